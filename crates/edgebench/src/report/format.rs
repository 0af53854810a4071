//! Number and text formatting shared by the Markdown, HTML and compare output.

use super::Cell;

/// About three significant figures; "–" for a missing value.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 || x == 0.0 {
        format!("{x:.2}")
    } else if x.abs() >= 0.01 {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

pub fn interval(lo: f64, hi: f64) -> String {
    format!("[{}, {}]", num(lo), num(hi))
}

pub fn median_with_ci(c: &Cell) -> String {
    if c.n == 0 {
        return "–".into();
    }
    format!("{} {}", num(c.median), interval(c.median_ci.0, c.median_ci.1))
}

pub fn p99_with_ci(c: &Cell) -> String {
    if c.n == 0 {
        return "–".into();
    }
    format!("{} {}", num(c.p99), interval(c.p99_ci.0, c.p99_ci.1))
}

/// The ratio to the baseline with its interval; "baseline" on its own rows.
pub fn ratio(c: &Cell) -> String {
    if c.is_baseline {
        return "baseline".into();
    }
    match c.ratio {
        Some((r, lo, hi)) => format!("{}× {}", num(r), interval(lo, hi)),
        None => "–".into(),
    }
}

/// "±14.5% noisy": half-width of the per-trial median's interval, and the verdict.
pub fn noise_text(c: &Cell) -> String {
    match c.noise {
        None => "–".into(),
        Some(n) => {
            let level = match n.level {
                super::stats::NoiseLevel::Quiet => "quiet",
                super::stats::NoiseLevel::Noisy => "noisy",
                super::stats::NoiseLevel::VeryNoisy => "very noisy",
                super::stats::NoiseLevel::TooFew => "too few trials",
            };
            format!("±{} {level}", percent(n.rel_half_width))
        }
    }
}

/// Trials needed for ±5%, or why more trials will not get there.
pub fn trials_needed(c: &Cell) -> String {
    match c.noise.and_then(|n| n.more_for_target.map(|m| (m, n.n))) {
        None => "–".into(),
        Some((more, n)) if more + n > 10 * n => format!("> {}", 10 * n),
        Some((more, n)) => format!("≈ {}", more + n),
    }
}

pub fn p_value(p: f64) -> String {
    if !p.is_finite() {
        "–".into()
    } else if p < 1e-4 {
        "<0.0001".into()
    } else if p < 0.01 {
        format!("{p:.4}")
    } else {
        format!("{p:.3}")
    }
}

pub fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", x * 100.0)
    } else {
        "–".into()
    }
}

/// "runtime (variant)".
pub fn config(runtime: &str, variant: &str) -> String {
    format!("{runtime} ({variant})")
}

/// "runtime (variant)", with the firewall profile when it is not `off`.
pub fn config_under(runtime: &str, variant: &str, conditions: &str) -> String {
    let (firewall, edge) = split_conditions(conditions);
    let mut out = config(runtime, variant);
    if !matches!(firewall, "off" | "") {
        out.push_str(&format!(" · firewall {firewall}"));
    }
    if let Some(edge) = edge {
        out.push_str(&format!(" · edge {edge}"));
    }
    out
}

/// A cell's conditions (`Cell::conditions`): the firewall profile, and the
/// edge profile when it is not `none`.
pub fn split_conditions(conditions: &str) -> (&str, Option<&str>) {
    conditions.split_once("; edge ").map_or((conditions, None), |(f, e)| (f, Some(e)))
}

/// Report order of conditions: firewall profile, then `none` before the
/// edge profiles, by name.
pub fn conditions_order(conditions: &str) -> ((u8, usize, bool, String), String) {
    let (firewall, edge) = split_conditions(conditions);
    (super::firewall::profile_order(firewall), edge.unwrap_or("").to_string())
}

/// Median [95% interval], or why there is none.
pub fn median_or_why(c: Option<&Cell>) -> String {
    match c {
        Some(c) if c.n > 0 => median_with_ci(c),
        Some(c) if c.failed > 0 => format!("failed ({})", c.failed),
        _ => "–".into(),
    }
}

/// The open loop's rate meeting the objective, with the trials where none did.
pub fn open_rate(c: Option<&Cell>) -> String {
    let trials = |n: usize| format!("{n} trial{}", if n == 1 { "" } else { "s" });
    match c {
        Some(c) if c.n == 0 && c.failed > 0 => format!("none met it in {}", trials(c.failed)),
        Some(c) if c.failed > 0 => format!("{}; none met it in {}", median_with_ci(c), trials(c.failed)),
        other => median_or_why(other),
    }
}

/// A value in its unit as shown (KiB as MiB), or "–".
pub fn kib_as_mib(kib: Option<f64>) -> String {
    kib.map_or("–".into(), |k| num(k / 1024.0))
}

/// An integer without decimals, other numbers as [`num`].
pub fn count(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        num(v)
    }
}

/// Text for HTML element content and attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a Markdown table cell.
pub fn md(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;").replace(['\n', '\r'], " ")
}

pub fn short(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s.to_string()
    }
}

/// How many key cells reached the precision target, and how trials pursued it.
pub fn precision_text(q: &super::model::Quality) -> String {
    let p = &q.precision;
    let target = percent(p.target);
    let reached = format!(
        "{} of {} key cells reached ±{target} (95% interval of the per-trial median within ±{target} of it); \
         every key cell not in the table below reached it.",
        q.quiet_key_cells,
        q.key_cells.len()
    );
    let short = match q.below_planned_key_cells {
        0 => String::new(),
        n => format!(
            " {n} key cell(s) have fewer than the {} planned trials: the time budget ended the campaign first, or \
             trials failed (`edgebench run --resume DIR` runs what is missing).",
            p.min_trials
        ),
    };
    if !p.adaptive {
        return format!("{reached} Adaptive repetitions were off: {} trials per configuration.{short}", p.min_trials);
    }
    let budget = p.budget_s.map_or("no time budget".to_string(), |s| {
        format!(
            "a budget of {s} s for the whole campaign (planned trials included, run in rounds of one trial per cell)"
        )
    });
    format!(
        "{reached} Adaptive repetitions: at least {} trials per configuration, then more (in seeded, interleaved \
         rounds, widest intervals first) until its key cells reached ±{target}, up to {} trials and within {budget}.{short}",
        p.min_trials,
        p.max_trials.map_or("no cap".to_string(), |m| m.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_hostile_text() {
        let hostile = "</td><script>alert('x')</script> & \"q\"";
        let escaped = html(hostile);
        assert_eq!(escaped, "&lt;/td&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
        assert!(!escaped.contains('<') && !escaped.contains('"'));
        assert_eq!(md("a|b<script>\nc"), "a\\|b&lt;script&gt; c");
    }

    #[test]
    fn numbers_keep_about_three_figures() {
        assert_eq!(num(1234.5), "1234");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(0.01234), "0.012");
        assert_eq!(num(0.000123), "1.23e-4");
        assert_eq!(num(f64::NAN), "–");
        assert_eq!(p_value(0.00001), "<0.0001");
        assert_eq!(p_value(0.0123), "0.012");
    }
}
