//! Puts DuckDB's prebuilt `libduckdb.so` where the linker and `cargo run` find it.
//!
//! The library comes from DuckDB's own npm package for Linux x86_64 (the npm registry is reachable
//! where GitHub's release downloads are not), checked against the registry's SHA-512 before use,
//! and kept in `~/.cache/bondlake/` so clean clones and CI reuse it. Set `BONDLAKE_LIBDUCKDB_DIR`
//! to a folder holding DuckDB 1.5.6's `libduckdb.so` (`libduckdb.dylib` on macOS) to skip the
//! download, or on another platform.

use sha2::{Digest, Sha512};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGE: &str = "node-bindings-linux-x64-1.5.6-r.1";
const URL: &str = "https://registry.npmjs.org/@duckdb/node-bindings-linux-x64/-/node-bindings-linux-x64-1.5.6-r.1.tgz";
/// The registry's `dist.integrity` for the tarball, as hex.
const SHA512: &str = "21772b64913a904a8cd19e30c1d5671811d7fdface4b7dd53cd0300d743f43e16cf386f4e7c41ef78721ac208870d2651bc6375072145387817824315b998dd5";
const LIB: &str = "libduckdb.so";

fn main() {
    println!("cargo:rerun-if-env-changed=BONDLAKE_LIBDUCKDB_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    if let Err(e) = run() {
        panic!(
            "bondlake-warehouse-duckdb: {e}\nSet BONDLAKE_LIBDUCKDB_DIR to a folder holding DuckDB 1.5.6's {LIB} \
             (e.g. from `npm pack @duckdb/node-bindings-linux-x64@1.5.6-r.1`) to build without the download."
        );
    }
}

fn run() -> Result<(), String> {
    let target = env::var("TARGET").unwrap_or_default();
    let lib = if target.contains("apple") {
        "libduckdb.dylib"
    } else {
        LIB
    };
    let dir = match env::var_os("BONDLAKE_LIBDUCKDB_DIR") {
        // Any platform: the library is the user's (not tried here on other than Linux x86_64).
        Some(d) => {
            let dir = PathBuf::from(d);
            if !dir.join(lib).exists() {
                return Err(format!(
                    "BONDLAKE_LIBDUCKDB_DIR={} holds no {lib}",
                    dir.display()
                ));
            }
            dir
        }
        None if target == "x86_64-unknown-linux-gnu" => {
            let dir = cache_dir()?.join(PACKAGE);
            if !dir.join(lib).exists() {
                fetch(&dir)?;
            }
            dir
        }
        None => {
            return Err(format!(
                "the prebuilt DuckDB is fetched for x86_64-unknown-linux-gnu only, not {target}"
            ));
        }
    };
    let lib = dir.join(lib);
    // A copy under OUT_DIR: cargo puts link paths inside the target folder on the library path of
    // `cargo run` and `cargo test`; the rpath below serves an installed binary.
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let name = lib.file_name().unwrap_or_default();
    copy_if_changed(&lib, &out.join(name))?;
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=dylib=duckdb");
    println!("cargo:libdir={}", dir.display());
    Ok(())
}

fn cache_dir() -> Result<PathBuf, String> {
    if let Some(x) = env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(x).join("bondlake"));
    }
    env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache").join("bondlake"))
        .ok_or_else(|| "neither XDG_CACHE_HOME nor HOME is set".to_string())
}

fn fetch(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tgz = dir.join(format!("{PACKAGE}.tgz.part"));
    println!("cargo:warning=fetching DuckDB's prebuilt library (24 MB) from {URL}");
    let status = Command::new("curl")
        .args(["-fsSL", "--retry", "3", "-o"])
        .arg(&tgz)
        .arg(URL)
        .status()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    if !status.success() {
        return Err(format!("curl could not download {URL} ({status})"));
    }
    let bytes = fs::read(&tgz).map_err(|e| e.to_string())?;
    let digest = hex::encode(Sha512::digest(&bytes));
    if digest != SHA512 {
        let _ = fs::remove_file(&tgz);
        return Err(format!("{URL} does not match its registry checksum"));
    }
    let unpack = dir.join("unpack");
    fs::create_dir_all(&unpack).map_err(|e| e.to_string())?;
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(&unpack)
        .arg(format!("package/{LIB}"))
        .status()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !status.success() {
        return Err(format!("tar could not unpack {}", tgz.display()));
    }
    // Renamed into place last, so a half-done fetch is never taken for a library.
    fs::rename(unpack.join("package").join(LIB), dir.join(LIB)).map_err(|e| e.to_string())?;
    let _ = fs::remove_file(&tgz);
    let _ = fs::remove_dir_all(&unpack);
    Ok(())
}

fn copy_if_changed(from: &Path, to: &Path) -> Result<(), String> {
    let same = match (fs::metadata(from), fs::metadata(to)) {
        (Ok(a), Ok(b)) => a.len() == b.len() && a.modified().ok() <= b.modified().ok(),
        _ => false,
    };
    if !same {
        fs::copy(from, to)
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    }
    Ok(())
}
