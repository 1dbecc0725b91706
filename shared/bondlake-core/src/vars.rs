//! A function's settings from its environment: one reading of "set", "required" and "a whole
//! number" for every function, with errors that name the variable.

/// Settings read through a lookup (the environment in Lambda, a closure in tests).
pub struct Vars<'a> {
    var: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    /// Reads through `var`.
    pub fn new(var: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Vars { var }
    }

    /// The value, when set to something other than blanks.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.var)(name).filter(|v| !v.trim().is_empty())
    }

    /// The value, or an error naming the variable.
    pub fn required(&self, name: &str) -> Result<String, String> {
        self.get(name).ok_or_else(|| format!("{name} is not set"))
    }

    /// A whole number, or `default` when unset; an error names the variable and the value.
    pub fn number(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("{name} = `{v}` is not a whole number")),
        }
    }
}

/// One function's variables from a `sam local invoke --env-vars` file (`events/env.json`:
/// logical id → name → value), so the sample events, `sam local` and the handlers' tests share
/// one set of settings.
pub fn sam_env_vars(
    json: &str,
    function: &str,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let all: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        serde_json::from_str(json).map_err(|e| format!("env-vars file: {e}"))?;
    all.get(function)
        .cloned()
        .ok_or_else(|| format!("env-vars file: no `{function}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_are_unset_and_errors_name_the_variable() {
        let lookup = |name: &str| match name {
            "A" => Some(" ".to_string()),
            "N" => Some("12x".to_string()),
            "M" => Some(" 42 ".to_string()),
            _ => None,
        };
        let v = Vars::new(&lookup);
        assert_eq!(v.get("A"), None);
        assert_eq!(v.required("A").expect_err("blank"), "A is not set");
        assert_eq!(v.number("M", 1), Ok(42));
        assert_eq!(v.number("Z", 7), Ok(7));
        assert_eq!(
            v.number("N", 1).expect_err("bad"),
            "N = `12x` is not a whole number"
        );
    }

    #[test]
    fn the_sam_env_vars_file_names_every_functions_buckets() {
        let file = include_str!("../../../events/env.json");
        for f in [
            "CsvProcessorFunction",
            "WarehouseLoaderFunction",
            "MskLanderFunction",
            "NotifierFunction",
        ] {
            let vars = sam_env_vars(file, f).expect("function");
            assert_eq!(
                vars.get("PROCESSED_BUCKET").map(String::as_str),
                Some("bondlake-dev-processed-123456789012"),
                "{f}"
            );
        }
        assert!(sam_env_vars(file, "Nope").is_err());
    }
}
