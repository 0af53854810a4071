//! `summary.csv`: one row per runtime × variant × workload × metric × phase.
//! Columns are appended, never renamed or moved: scripts read them by name.

use super::Cell;
use std::fmt::Write;

const HEADER: &str = "runtime,variant,workload,metric,phase,unit,n,failed,median,median_ci_low,median_ci_high,median_ci_coverage,p90,p99,p999,min,max,mean,cv,ratio_to_native,ratio_ci_low,ratio_ci_high,note,trials,p99_ci_low,p99_ci_high,p_vs_native,p_holm_vs_native,cliffs_delta_vs_native,noise_rel_half_width,noise_level,outlier_repetitions,first_k_ratio,first_k_p,first_k_flagged,firewall,median_ci_method,is_baseline,edge";

pub fn render(cells: &[Cell]) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for c in cells {
        out.push_str(&row(c));
        out.push('\n');
    }
    out
}

/// A fleet's `summary.csv`: every host's rows as above, after a leading `host` column.
pub fn render_by_host(hosts: &[super::fleet::Host]) -> String {
    let mut out = format!("host,{HEADER}\n");
    for h in hosts {
        for c in &h.model.cells {
            let _ = writeln!(out, "{},{}", field(&h.row.host), row(c));
        }
    }
    out
}

/// One cell's fields, in [`HEADER`] order.
fn row(c: &Cell) -> String {
    let (r, rlo, rhi) = c.ratio.unwrap_or((f64::NAN, f64::NAN, f64::NAN));
    let fields = [
        field(&c.runtime),
        field(&c.variant),
        field(&c.workload),
        field(&c.metric),
        field(&c.phase),
        field(&c.unit),
        c.n.to_string(),
        c.failed.to_string(),
        num(c.median),
        num(c.median_ci.0),
        num(c.median_ci.1),
        num(c.median_ci_coverage),
        num(c.p90),
        num(c.p99),
        num(c.p999),
        num(c.min),
        num(c.max),
        num(c.mean),
        num(c.cv),
        num(r),
        num(rlo),
        num(rhi),
        field(&c.note),
        c.trials.len().to_string(),
        num(c.p99_ci.0),
        num(c.p99_ci.1),
        num(c.vs_baseline.map_or(f64::NAN, |v| v.p)),
        num(c.vs_baseline.map_or(f64::NAN, |v| v.p_holm)),
        num(c.vs_baseline.map_or(f64::NAN, |v| v.cliffs_delta)),
        num(c.noise.map_or(f64::NAN, |n| n.rel_half_width)),
        c.noise.map(|n| format!("{:?}", n.level)).unwrap_or_default(),
        c.outlier_reps.iter().map(u32::to_string).collect::<Vec<_>>().join(" "),
        num(c.first_k.as_ref().map_or(f64::NAN, |f| f.ratio)),
        num(c.first_k.as_ref().map_or(f64::NAN, |f| f.p)),
        c.first_k.as_ref().map(|f| f.flagged.to_string()).unwrap_or_default(),
        field(&c.firewall),
        serde_json::to_value(c.median_ci_method).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        // The `*_native` columns are against this row's campaign baseline (native unless set).
        u8::from(c.is_baseline).to_string(),
        field(&c.edge),
    ];
    fields.join(",")
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.6}")
    } else {
        String::new()
    }
}

/// RFC 4180 quoting.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_fields_that_need_it() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("plain"), "plain");
        assert_eq!(num(f64::NAN), "");
    }
}
