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
            let file = path.file_name()?.to_str()?.to_string();
            is_contract.then_some((stem, file))
        })
        .collect();
    // Sorted by name: `load_all` returns the datasets in this order on every machine.
    datasets.sort();
    let mut code = format!(
        "/// The dataset contracts built in: (dataset, contract text), by dataset name.\n\
         pub const BUILTIN: [(&str, &str); {}] = [\n",
        datasets.len()
    );
    // The path is the compiling checkout's, not this script's: several checkouts may share one
    // target folder (CI's clean clones and a session's), and cargo may reuse this script's output
    // from another of them. An absolute path written here would embed that checkout's contracts.
    for (name, file) in &datasets {
        let _ = writeln!(
            code,
            "    ({name:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../../contracts/{file}\"))),"
        );
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("builtin_contracts.rs");
    std::fs::write(&out, code).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
