//! The workspace's shape, checked: what a Lambda ships is production code only, and the core
//! crate has no outside system in it. `cargo tree` is the truth here (the same command the README
//! gives), run on the lock file with no network.

use std::path::Path;
use std::process::Command;

const FUNCTIONS: [&str; 5] = [
    "csv-processor",
    "emr-launcher",
    "msk-lander",
    "notifier",
    "warehouse-loader",
];

/// The packages (`name vX.Y.Z`) in the normal (non-dev, non-build) dependency tree of `package`.
fn normal_tree(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(cargo)
        .current_dir(&root)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["-p", package])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("cargo tree prints UTF-8");
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn no_function_ships_test_tooling() {
    const TOOLING: [&str; 7] = [
        "bondlake-testkit",
        "rand",
        "rand_chacha",
        "s3s",
        "s3s-fs",
        "aws-smithy-mocks",
        "proptest",
    ];
    for function in FUNCTIONS {
        let tree = normal_tree(function);
        assert!(
            tree.iter().any(|p| p == "bondlake-core"),
            "{function} stands on bondlake-core: {tree:?}"
        );
        let found: Vec<&String> = tree
            .iter()
            .filter(|p| TOOLING.contains(&p.as_str()))
            .collect();
        assert!(found.is_empty(), "{function} ships test tooling: {found:?}");
    }
}

#[test]
fn the_core_crate_has_no_outside_system_in_it() {
    let tree = normal_tree("bondlake-core");
    let found: Vec<&String> = tree
        .iter()
        .filter(|p| {
            p.starts_with("aws-")
                || p.starts_with("bondlake-")
                || [
                    "tokio",
                    "hyper",
                    "lambda_runtime",
                    "postgres",
                    "duckdb",
                    "rand",
                ]
                .contains(&p.as_str())
        })
        .filter(|p| p.as_str() != "bondlake-core")
        .collect();
    assert!(found.is_empty(), "bondlake-core depends on {found:?}");
}

#[test]
fn only_the_functions_that_need_it_link_an_outside_system() {
    // The lander and the processor talk to S3 and SNS only: no warehouse, no Slack.
    for function in ["csv-processor", "msk-lander", "emr-launcher"] {
        let tree = normal_tree(function);
        for other in [
            "bondlake-slack",
            "bondlake-warehouse-redshift",
            "aws-sdk-redshiftdata",
            "aws-sdk-secretsmanager",
        ] {
            assert!(!tree.iter().any(|p| p == other), "{function} links {other}");
        }
    }
    assert!(
        normal_tree("warehouse-loader")
            .iter()
            .any(|p| p == "aws-sdk-redshiftdata")
    );
    assert!(
        normal_tree("notifier")
            .iter()
            .any(|p| p == "bondlake-slack")
    );
    // Only the loader (the weekly export's mode) and the CLI compile the MySQL driver.
    for function in FUNCTIONS {
        let links = normal_tree(function).iter().any(|p| p == "mysql");
        assert_eq!(
            links,
            function == "warehouse-loader",
            "{function} and mysql"
        );
    }
    // Only the launcher (and the CLI) compile the EMR SDK.
    for function in FUNCTIONS {
        let links = normal_tree(function).iter().any(|p| p == "aws-sdk-emr");
        assert_eq!(
            links,
            function == "emr-launcher",
            "{function} and aws-sdk-emr"
        );
    }
}

/// The module graph of `bondlake-core` (module → the modules its code names through `crate::`,
/// comments and tests left out), as (module, dependencies).
fn core_module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bondlake-core/src");
    let mut graph = std::collections::BTreeMap::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("src readable")
                    .map(|e| e.expect("entry").path()),
            );
            continue;
        }
        let rel = path.strip_prefix(&src).expect("under src");
        let module = rel
            .components()
            .next()
            .expect("a file")
            .as_os_str()
            .to_string_lossy();
        let module = module.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source readable");
        // Unit tests may reach anywhere; the production code is what must not cycle.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        let deps: &mut std::collections::BTreeSet<String> =
            graph.entry(module.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let before = line[..i].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue; // `bondlake_core::` and the like
                }
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

#[test]
fn the_core_modules_form_no_cycle() {
    // Show the graph: cargo test --release --test layout -- --nocapture the_core_modules
    let graph = core_module_graph();
    for (module, deps) in &graph {
        println!(
            "{module} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    // Depth-first search with colours; a grey node met again closes a cycle.
    fn visit<'a>(
        node: &'a str,
        graph: &'a std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        state: &mut std::collections::HashMap<&'a str, bool>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(true) => return None,
            Some(false) => {
                let at = path.iter().position(|n| *n == node).unwrap_or(0);
                let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        state.insert(node, false);
        path.push(node);
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(dep, graph, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(node, true);
        None
    }
    let mut state = std::collections::HashMap::new();
    for module in graph.keys() {
        let cycle = visit(module, &graph, &mut state, &mut Vec::new());
        assert!(
            cycle.is_none(),
            "a module cycle in bondlake-core: {}",
            cycle.unwrap_or_default().join(" → ")
        );
    }
}
