//! The musl binaries build with nothing but rustup and the host's gcc
//! (issue 12): every C file a musl build compiles goes through
//! `scripts/musl-cc` (set in `.cargo/config.toml`), which compiles only
//! Wasmtime's header-only helper and refuses anything else by name. The test
//! command builds the artifacts through it, so a new C dependency fails CI.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn compile(source: &Path) -> std::process::Output {
    let object = source.with_extension("o");
    Command::new(workspace().join("scripts/musl-cc"))
        .args(["-c", "-o"])
        .arg(&object)
        .arg(source)
        .output()
        .expect("scripts/musl-cc runs")
}

#[test]
fn cargo_config_routes_the_musl_c_compiler_through_the_guard() {
    let config = std::fs::read_to_string(workspace().join(".cargo/config.toml")).unwrap();
    assert!(
        config.contains(r#"CC_x86_64_unknown_linux_musl = { value = "scripts/musl-cc", relative = true }"#),
        "{config}"
    );
    // The arm64 build (`edgebench build --target aarch64`) goes through it too.
    assert!(
        config.contains(r#"CC_aarch64_unknown_linux_musl = { value = "scripts/musl-cc", relative = true }"#),
        "{config}"
    );
}

#[test]
fn the_guard_refuses_c_code_for_aarch64_too_naming_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_like = dir.path().join("libsqlite3-sys-0.30/sqlite3/sqlite3.c");
    std::fs::create_dir_all(sqlite_like.parent().unwrap()).unwrap();
    std::fs::write(&sqlite_like, "int f(void) { return 1; }\n").unwrap();
    let out = Command::new(workspace().join("scripts/musl-cc"))
        .env("TARGET", "aarch64-unknown-linux-musl")
        .args(["-c", "-o"])
        .arg(sqlite_like.with_extension("o"))
        .arg(&sqlite_like)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must refuse: {stderr}");
    assert!(stderr.contains("sqlite3.c") && stderr.contains("aarch64-unknown-linux-musl"), "{stderr}");
}

#[test]
fn the_guard_refuses_c_code_other_than_wasmtimes_helper() {
    let dir = tempfile::tempdir().unwrap();
    let ring_like = dir.path().join("ring-0.17/crypto/curve25519.c");
    std::fs::create_dir_all(ring_like.parent().unwrap()).unwrap();
    std::fs::write(&ring_like, "int f(void) { return 1; }\n").unwrap();
    let out = compile(&ring_like);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must refuse: {stderr}");
    assert!(stderr.contains("refusing to compile") && stderr.contains("curve25519.c"), "{stderr}");
    assert!(!ring_like.with_extension("o").exists(), "nothing compiled");
}

#[test]
fn the_guard_compiles_wasmtimes_helper_with_the_host_compiler() {
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("wasmtime-48.0.8/src/runtime/vm/helpers.c");
    std::fs::create_dir_all(helper.parent().unwrap()).unwrap();
    std::fs::write(&helper, "#include <stdbool.h>\nbool probe(void) { return true; }\n").unwrap();
    let out = compile(&helper);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(helper.with_extension("o").exists());
}
