//! The guest's configuration, from the kernel command line.

use std::net::Ipv4Addr;

pub struct Config {
    pub address: (Ipv4Addr, u8),
    /// `eb.gw=ADDR`: the default route, so that clients beyond the tap's
    /// subnet (edgebench's end of the VM namespace's veth) get answers.
    pub gateway: Option<Ipv4Addr>,
    pub workload: String,
    pub modules: Vec<String>,
}

impl Config {
    pub fn parse(cmdline: &str) -> Result<Config, String> {
        let value =
            |key: &str| cmdline.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')));
        let ip = value("eb.ip").ok_or("no eb.ip=ADDR/PREFIX on the kernel command line")?;
        let (addr, prefix) = ip.split_once('/').ok_or_else(|| format!("eb.ip={ip}: expected ADDR/PREFIX"))?;
        let address = (
            addr.parse().map_err(|_| format!("eb.ip={ip}: bad address"))?,
            prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| format!("eb.ip={ip}: bad prefix"))?,
        );
        let gateway = match value("eb.gw") {
            Some(gw) => Some(gw.parse().map_err(|_| format!("eb.gw={gw}: bad address"))?),
            None => None,
        };
        let workload = value("eb.workload").ok_or("no eb.workload=NAME on the kernel command line")?.to_string();
        let modules =
            value("eb.modules").unwrap_or("").split(',').filter(|m| !m.is_empty()).map(str::to_string).collect();
        Ok(Config { address, gateway, workload, modules })
    }
}

/// `MODULE.param=value` words of the command line, as the module's parameter
/// string (what modprobe would pass; the kernel does not for loadable modules).
pub fn module_params(cmdline: &str, module: &str) -> String {
    let prefix = format!("{module}.");
    cmdline.split_whitespace().filter_map(|w| w.strip_prefix(&prefix)).collect::<Vec<_>>().join(" ")
}
