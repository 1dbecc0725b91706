//! The contracts built into the binary, and loading a dataset's contract by name.

use super::{Contract, ContractError};
use std::path::Path;

// The contracts shipped in `contracts/`, compiled into the binary so the CLI works from anywhere:
// `pub const BUILTIN: [(&str, &str); N]`, (dataset, TOML text), one per dataset contract file,
// listed by build.rs. A new dataset is a new file there, not a change here.
include!(concat!(env!("OUT_DIR"), "/builtin_contracts.rs"));

/// Loads every dataset's contract (each from `dir` when given, else built in), in BUILTIN order.
pub fn load_all(dir: Option<&Path>) -> Result<Vec<Contract>, ContractError> {
    BUILTIN
        .iter()
        .map(|(name, _)| load_dataset(name, dir))
        .collect()
}

/// Loads a dataset's contract: from `dir/<dataset>.toml` when a directory is given, else the copy
/// built into the binary.
pub fn load_dataset(dataset: &str, dir: Option<&Path>) -> Result<Contract, ContractError> {
    if let Some(dir) = dir {
        return Contract::load(&dir.join(format!("{dataset}.toml")));
    }
    let (name, text) = BUILTIN.iter().find(|(n, _)| *n == dataset).ok_or_else(|| {
        ContractError::UnknownDataset {
            file: format!("{dataset}.toml"),
            dataset: dataset.to_string(),
            known: BUILTIN.map(|(n, _)| n).join(", "),
        }
    })?;
    Contract::from_toml(&format!("contracts/{name}.toml"), text)
}
