//! The workload image: `FROM scratch` plus the static musl server, built by
//! the engine's legacy builder from a tar context made here (no registry can
//! be reached), tagged by the content hash of Dockerfile + binary so that an
//! unchanged binary is never rebuilt.

use super::engine::{is_not_found, Engine};
use super::labels;
use anyhow::{bail, Context as _, Result};
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion, ListImagesOptions, RemoveImageOptions};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The repository of edgebench's own server image; a user workload's image
/// is `edgebench-user-<workload>`.
pub const REPOSITORY: &str = "edgebench-workload";
/// Where the server lives in the image.
pub const SERVER: &str = "/edgebench-workload";
const DOCKERFILE: &str =
    "FROM scratch\nCOPY edgebench-workload /edgebench-workload\nENTRYPOINT [\"/edgebench-workload\"]\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Built,
    /// An image with this content hash was already there.
    Reused,
}

/// `<repository>:<first 12 hex digits of sha256(Dockerfile, binary)>`.
pub fn tag_for(repository: &str, binary: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [DOCKERFILE.as_bytes(), binary] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let hex: String = hash.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{repository}:{hex}")
}

/// Makes sure the image of `binary` exists; returns its tag and whether it was built.
pub fn ensure(engine: &Engine, repository: &str, binary: &Path, campaign: &str) -> Result<(String, Outcome)> {
    let bytes = std::fs::read(binary)
        .with_context(|| format!("reading {} (edgebench's own server: run `edgebench build`)", binary.display()))?;
    let tag = tag_for(repository, &bytes);
    match engine.call("inspect image", engine.api().inspect_image(&tag)) {
        Ok(_) => return Ok((tag, Outcome::Reused)),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    build(engine, &tag, &bytes, campaign)?;
    engine.call("inspect image", engine.api().inspect_image(&tag)).context("the image just built is not there")?;
    remove_stale(engine, repository, &tag);
    Ok((tag, Outcome::Built))
}

fn build(engine: &Engine, tag: &str, binary: &[u8], campaign: &str) -> Result<()> {
    let context = tar_context(binary)?;
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .labels(&labels::for_campaign(campaign))
        // No intermediate containers left behind, even on failure.
        .rm(true)
        .forcerm(true)
        .version(BuilderVersion::BuilderV1)
        .build();
    let api = engine.api();
    let messages = engine.call("build", async {
        let mut stream = api.build_image(options, None, Some(bollard::body_full(context.into())));
        let mut errors = Vec::new();
        while let Some(item) = stream.next().await {
            if let Some(detail) = item?.error_detail {
                errors.push(detail.message.unwrap_or_default());
            }
        }
        Ok(errors)
    })?;
    if !messages.is_empty() {
        bail!("docker build of {tag} failed: {}", messages.join("; "));
    }
    Ok(())
}

/// Loads a user's image (`docker load`): a tarball as `docker save` writes
/// it, or a directory holding one unpacked. Returns the reference it loaded.
pub fn load(engine: &Engine, path: &Path) -> Result<String> {
    let bytes = if path.is_dir() {
        let mut archive = tar::Builder::new(Vec::new());
        archive.append_dir_all(".", path).with_context(|| format!("packing {}", path.display()))?;
        archive.into_inner()?
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    };
    let api = engine.api();
    let options = bollard::query_parameters::ImportImageOptionsBuilder::default().quiet(true).build();
    let messages = engine.call("load", async {
        let mut stream = api.import_image(options, bollard::body_full(bytes.into()), None);
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            let item = item?;
            out.push((item.stream.unwrap_or_default(), item.error_detail.and_then(|d| d.message)));
        }
        Ok(out)
    })?;
    let errors: Vec<&str> = messages.iter().filter_map(|(_, e)| e.as_deref()).collect();
    if !errors.is_empty() {
        bail!("docker load of {} failed: {}", path.display(), errors.join("; "));
    }
    let loaded = messages.iter().find_map(|(text, _)| {
        let text = text.trim();
        text.strip_prefix("Loaded image: ").or_else(|| text.strip_prefix("Loaded image ID: ")).map(str::to_string)
    });
    loaded.with_context(|| {
        format!(
            "docker load of {} named no image (is it a `docker save` tarball? Docker Engine before 25 loads only \
             archives with a manifest.json): {messages:?}",
            path.display()
        )
    })
}

/// The build context: the Dockerfile and the server, with fixed metadata.
fn tar_context(binary: &[u8]) -> Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    for (name, data, mode) in [("Dockerfile", DOCKERFILE.as_bytes(), 0o644), (&SERVER[1..], binary, 0o755)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        archive.append_data(&mut header, name, data).context("writing the build context")?;
    }
    archive.into_inner().context("writing the build context")
}

/// Older edgebench images (other binaries); ones still in use stay.
fn remove_stale(engine: &Engine, repository: &str, current: &str) {
    let options = ListImagesOptions { filters: Some(labels::marked_filter()), ..Default::default() };
    let Ok(images) = engine.call("list images", engine.api().list_images(Some(options))) else { return };
    for image in images {
        let ours = image.repo_tags.iter().any(|t| t.starts_with(&format!("{repository}:")));
        if ours && !image.repo_tags.iter().any(|t| t == current) {
            let options = RemoveImageOptions { force: false, ..Default::default() };
            let _ = engine.call("remove image", engine.api().remove_image(&image.id, Some(options), None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_follows_content() {
        let a = tag_for(REPOSITORY, b"binary one");
        assert_eq!(a, tag_for(REPOSITORY, b"binary one"));
        assert_ne!(a, tag_for(REPOSITORY, b"binary two"));
        assert_eq!(a.len(), REPOSITORY.len() + 1 + 12);
    }

    #[test]
    fn context_holds_dockerfile_and_executable_server() {
        let tar = tar_context(b"\x7fELF").unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().mode().unwrap())
            })
            .collect();
        assert_eq!(entries, vec![("Dockerfile".into(), 0o644), ("edgebench-workload".into(), 0o755)]);
    }
}
