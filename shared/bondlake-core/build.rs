//! Lists the dataset contracts in `contracts/` for `contract::BUILTIN`: every `*.toml` there except
//! the routing and topic tables, by file name, so adding a dataset is adding its file.

use std::fmt::Write as _;
use std::path::Path;

/// The two tables in `contracts/` that are not dataset contracts (`route::BUILTIN`,
/// `kafka::BUILTIN_TOPICS` embed them).
const TABLES: [&str; 2] = ["routes", "topics"];

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut datasets: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let stem = path.file_stem()?.to_str()?.to_string();
            let is_contract =
                path.extension().is_some_and(|x| x == "toml") && !TABLES.contains(&stem.as_str());
            is_contract.then(|| {
                let path = path.canonicalize().unwrap_or(path);
                (stem, path.display().to_string())
            })
        })
        .collect();
    // Sorted by name: `load_all` returns the datasets in this order on every machine.
    datasets.sort();
    let mut code = format!(
        "/// The dataset contracts built in: (dataset, contract text), by dataset name.\n\
         pub const BUILTIN: [(&str, &str); {}] = [\n",
        datasets.len()
    );
    for (name, path) in &datasets {
        let _ = writeln!(code, "    ({name:?}, include_str!({path:?})),");
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("builtin_contracts.rs");
    std::fs::write(&out, code).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
