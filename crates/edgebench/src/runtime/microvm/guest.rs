//! The guest every micro-VM backend boots: Debian's cloud kernel (fetched
//! with apt, unpacked with dpkg-deb), its virtio modules, and an initramfs
//! edgebench writes itself holding our init and the native workload server.

use super::cpio;
use crate::artifacts::Artifacts;
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian metapackage whose current kernel the guest boots.
pub const KERNEL_PACKAGE: &str = "linux-image-cloud-amd64";
/// Virtio drivers are modules in Debian's cloud kernel: loaded by our init, in this order.
pub const MODULES: [&str; 7] =
    ["virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "failover", "net_failover", "virtio_net"];

/// Where the guest's files are under the target directory.
#[derive(Clone, Debug)]
pub struct GuestFiles {
    pub dir: PathBuf,
}

impl GuestFiles {
    pub fn new(artifacts: &Artifacts) -> GuestFiles {
        GuestFiles { dir: artifacts.target_dir.join("edgebench/microvm") }
    }

    /// The compressed kernel (bzImage) as Debian ships it.
    pub fn kernel(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }

    /// The same kernel as an ELF (Firecracker boots ELF or PVH images only).
    pub fn vmlinux(&self) -> PathBuf {
        self.dir.join("vmlinux")
    }

    pub fn module(&self, name: &str) -> PathBuf {
        self.dir.join("modules").join(format!("{name}.ko"))
    }

    pub fn initramfs(&self) -> PathBuf {
        self.dir.join("initramfs.cpio")
    }

    /// Which kernel was fetched (package and version), for the report.
    pub fn kernel_release(&self) -> String {
        std::fs::read_to_string(self.dir.join("kernel-release")).unwrap_or_default().trim().to_string()
    }

    /// What is missing to boot a guest, if anything.
    pub fn missing(&self) -> Option<String> {
        let mut needed = vec![self.kernel(), self.initramfs()];
        needed.extend(MODULES.iter().map(|m| self.module(m)));
        needed.iter().find(|p| !p.exists()).map(|p| format!("{} is not built: run `edgebench build`", p.display()))
    }
}

/// Fetches the kernel (once) and writes the initramfs (when an input changed).
pub fn build(artifacts: &Artifacts) -> Result<GuestFiles> {
    let files = GuestFiles::new(artifacts);
    std::fs::create_dir_all(files.dir.join("modules"))?;
    if !files.kernel().exists() || MODULES.iter().any(|m| !files.module(m).exists()) {
        fetch_kernel(&files)?;
    }
    let inputs: Vec<PathBuf> = [artifacts.guest_init(), artifacts.native_server()]
        .into_iter()
        .chain(MODULES.iter().map(|m| files.module(m)))
        .collect();
    for input in &inputs {
        if !input.exists() {
            bail!("{} is missing: build the musl binaries first (`edgebench build`)", input.display());
        }
    }
    if !is_newer(&files.initramfs(), &inputs) {
        write_initramfs(&files, &artifacts.guest_init(), &artifacts.native_server())?;
    }
    if !is_newer(&files.vmlinux(), &[files.kernel()]) {
        // Only Firecracker needs it: without lz4 it alone is not measured.
        if let Err(e) = extract_vmlinux(&files) {
            eprintln!("edgebench build: no ELF kernel for Firecracker: {e:#}");
        }
    }
    Ok(files)
}

fn fetch_kernel(files: &GuestFiles) -> Result<()> {
    let apt_dir = files.dir.join("apt");
    let _ = std::fs::remove_dir_all(&apt_dir);
    std::fs::create_dir_all(&apt_dir)?;
    let package = kernel_package()?;
    eprintln!("edgebench build: apt-get download {package}");
    run(
        crate::runtime::process::helper("apt-get").args(["download", &package]).current_dir(&apt_dir),
        "apt-get download",
    )?;
    let deb = std::fs::read_dir(&apt_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download {package} left no .deb in {}", apt_dir.display()))?;
    let root = apt_dir.join("root");
    run(crate::runtime::process::helper("dpkg-deb").arg("-x").arg(&deb).arg(&root), "dpkg-deb -x")?;
    let vmlinuz = std::fs::read_dir(root.join("boot"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
        .context("the kernel package has no /boot/vmlinuz-*")?;
    std::fs::copy(&vmlinuz, files.kernel())?;
    let release = vmlinuz.file_name().unwrap().to_string_lossy().trim_start_matches("vmlinuz-").to_string();
    let tree = root.join("lib/modules").join(&release).join("kernel");
    for name in MODULES {
        let found = find_file(&tree, &format!("{name}.ko"))
            .with_context(|| format!("module {name}.ko not found in {}", tree.display()))?;
        std::fs::copy(found, files.module(name))?;
    }
    let deb_name = deb.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::write(files.dir.join("kernel-release"), format!("{release} (Debian {deb_name})\n"))?;
    // The unpacked package is large; keep only what the guest uses.
    let _ = std::fs::remove_dir_all(&apt_dir);
    Ok(())
}

/// The versioned package the metapackage depends on (apt-get download does
/// not follow dependencies).
fn kernel_package() -> Result<String> {
    let out = crate::runtime::process::helper("apt-cache")
        .args(["depends", KERNEL_PACKAGE])
        .output()
        .context("running apt-cache: the guest kernel is fetched with apt (Debian or Ubuntu hosts)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|d| d.starts_with("linux-image-"))
        .map(str::to_string)
        .with_context(|| format!("apt-cache depends {KERNEL_PACKAGE} names no linux-image: run apt-get update"))
}

fn write_initramfs(files: &GuestFiles, init: &Path, server: &Path) -> Result<()> {
    let tmp = files.initramfs().with_extension("cpio.tmp");
    let out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut w = cpio::Writer::new(out);
    for dir in ["dev", "proc", "sys", "lib", "lib/modules"] {
        w.dir(dir, 0o755)?;
    }
    // The kernel opens /dev/console for init's stdio before init mounts devtmpfs.
    w.char_device("dev/console", 0o600, 5, 1)?;
    w.file("init", 0o755, &std::fs::read(init)?)?;
    w.file("edgebench-workload", 0o755, &std::fs::read(server)?)?;
    for name in MODULES {
        w.file(&format!("lib/modules/{name}.ko"), 0o644, &std::fs::read(files.module(name))?)?;
    }
    use std::io::Write as _;
    w.finish()?.flush()?;
    std::fs::rename(&tmp, files.initramfs())?;
    Ok(())
}

/// Debian compresses its bzImage payload with LZ4 (legacy frame): find the
/// frame and decompress it with the `lz4` tool, as the kernel's
/// scripts/extract-vmlinux does.
fn extract_vmlinux(files: &GuestFiles) -> Result<()> {
    use std::io::Write as _;
    const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
    let image = std::fs::read(files.kernel())?;
    let start = image
        .windows(4)
        .position(|w| w == LZ4_LEGACY_MAGIC)
        .context("no LZ4 payload in the kernel image (not an LZ4-compressed bzImage)")?;
    let mut child = crate::runtime::process::helper("lz4")
        .args(["-dc"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("running lz4 (apt-get install lz4)")?;
    let mut stdin = child.stdin.take().unwrap();
    let payload = image[start..].to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&payload));
    // lz4 complains about the bytes after the frame; the ELF is what counts.
    let out = child.wait_with_output()?;
    let _ = writer.join();
    if !out.stdout.starts_with(b"\x7fELF") {
        bail!("lz4 did not produce an ELF kernel");
    }
    std::fs::write(files.vmlinux(), &out.stdout)?;
    Ok(())
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let out = command.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn is_newer(output: &Path, inputs: &[PathBuf]) -> bool {
    let Ok(out) = output.metadata().and_then(|m| m.modified()) else { return false };
    inputs.iter().all(|i| i.metadata().and_then(|m| m.modified()).map(|t| t <= out).unwrap_or(false))
}
