//! The template's S3 grants, enforced by the test server: each function signs with an access key
//! of its own, and a request its role's policy does not allow is refused as S3 refuses it (403
//! `AccessDenied`). The grants come from `tests/grants.json`, which `.ci/check_template.py`
//! derives from `template.yaml` (and CI keeps in step), so a call the deployed role may not make
//! fails a test here instead of the first real run.
//!
//! Modelled as S3 documents it: an operation needs the action of the same name on the object
//! (`HeadObject` is `s3:GetObject`, the multipart calls are `s3:PutObject`) or `s3:ListBucket`
//! on the bucket; and a read of a missing key is a 403, not a 404, when the caller may not list
//! the bucket.

use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::{CopyObjectInput, CopySource, DeleteObjectsInput};
use s3s::{S3Request, S3Result, s3_error};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One Allow statement: actions on resource patterns (`*` and `?` as in IAM).
#[derive(Debug, Clone, serde::Deserialize)]
struct Statement {
    #[serde(default)]
    sid: String,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// Each function's S3 statements, with the buckets resolved to the test's own.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    roles: BTreeMap<String, Vec<Statement>>,
}

impl Grants {
    /// Reads `tests/grants.json`'s text; `buckets` maps each placeholder (`raw`, `processed`,
    /// `kafka_failures`) to the buckets it stands for here (a placeholder may stand for several).
    pub fn from_json(text: &str, buckets: &[(&str, &str)]) -> Result<Grants, String> {
        let raw: BTreeMap<String, Vec<Statement>> =
            serde_json::from_str(text).map_err(|e| format!("grants: {e}"))?;
        let mut roles = BTreeMap::new();
        for (role, statements) in raw {
            let resolved = statements
                .into_iter()
                .map(|st| Statement {
                    resources: st
                        .resources
                        .iter()
                        .flat_map(|r| expand(r, buckets))
                        .collect(),
                    ..st
                })
                .collect();
            roles.insert(role, resolved);
        }
        Ok(Grants { roles })
    }

    /// The roles named, in order.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// Whether `role` may do `action` on `arn`: the Sid of the statement that allows it.
    pub fn allows(&self, role: &str, action: &str, arn: &str) -> Option<&str> {
        self.roles.get(role)?.iter().find_map(|st| {
            (st.actions.iter().any(|a| a == action)
                && st.resources.iter().any(|r| wildcard(r, arn)))
            .then_some(st.sid.as_str())
        })
    }
}

/// `{placeholder}/rest` as an ARN for each bucket the placeholder stands for.
fn expand(resource: &str, buckets: &[(&str, &str)]) -> Vec<String> {
    let Some(rest) = resource.strip_prefix('{') else {
        return vec![resource.to_string()];
    };
    let Some((name, path)) = rest.split_once('}') else {
        return vec![resource.to_string()];
    };
    buckets
        .iter()
        .filter(|(placeholder, _)| *placeholder == name)
        .map(|(_, bucket)| format!("arn:aws:s3:::{bucket}{path}"))
        .collect()
}

/// IAM's resource matching: `*` any run of characters (`/` included), `?` any one.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // The classic two-pointer match with backtracking to the last star.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

/// The access control the server installs: the admin key (the tests' own setup and checks) may
/// do anything; a role's key only what its grants allow.
pub(crate) struct Enforce {
    pub(crate) grants: Arc<Grants>,
    pub(crate) admin: String,
    /// The served folder: a read of a missing key is answered by what the caller may list.
    pub(crate) root: PathBuf,
    pub(crate) denied: Arc<Mutex<Vec<String>>>,
}

impl Enforce {
    /// `Ok` when `role` may do `action` on `arn`; else the denial is recorded and refused.
    fn need(&self, role: &str, action: &str, arn: &str) -> S3Result<()> {
        if self.grants.allows(role, action, arn).is_some() {
            return Ok(());
        }
        let what = format!("{role}: {action} on {arn}");
        self.denied.lock().expect("denials").push(what.clone());
        Err(s3_error!(
            AccessDenied,
            "not allowed by the template's grants: {what}"
        ))
    }

    /// The role signing, or `None` for the admin key.
    fn role<'c>(
        &self,
        credentials: Option<&'c s3s::auth::Credentials>,
    ) -> S3Result<Option<&'c str>> {
        match credentials {
            None => Err(s3_error!(AccessDenied, "anonymous request")),
            Some(c) if c.access_key == self.admin => Ok(None),
            Some(c) => Ok(Some(c.access_key.as_str())),
        }
    }
}

#[async_trait::async_trait]
impl S3Access for Enforce {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(role) = self.role(cx.credentials())? else {
            return Ok(());
        };
        let op = cx.s3_op().name().to_string();
        let path = cx.s3_path();
        let (bucket, key) = match (path.get_bucket_name(), path.get_object_key()) {
            (Some(b), k) => (b.to_string(), k.map(str::to_string)),
            (None, _) => return self.need(role, "s3:ListAllMyBuckets", "*"),
        };
        let object = || object_arn(&bucket, key.as_deref().unwrap_or(""));
        match op.as_str() {
            "GetObject" | "HeadObject" | "GetObjectAttributes" => {
                self.need(role, "s3:GetObject", &object())?;
                let missing = !self
                    .root
                    .join(&bucket)
                    .join(key.as_deref().unwrap_or(""))
                    .is_file();
                if missing
                    && self
                        .grants
                        .allows(role, "s3:ListBucket", &bucket_arn(&bucket))
                        .is_none()
                {
                    // S3 answers 403, not 404, so as not to tell a caller that may not list
                    // what the bucket holds.
                    self.denied.lock().expect("denials").push(format!(
                        "{role}: {op} of missing {} with no s3:ListBucket",
                        object()
                    ));
                    return Err(s3_error!(AccessDenied, "missing key, and no s3:ListBucket"));
                }
                Ok(())
            }
            "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => {
                self.need(role, "s3:PutObject", &object())
            }
            // The copy's source is checked once its input is read (`copy_object` below).
            "CopyObject" | "UploadPartCopy" => self.need(role, "s3:PutObject", &object()),
            "AbortMultipartUpload" => self.need(role, "s3:AbortMultipartUpload", &object()),
            "ListParts" => self.need(role, "s3:ListMultipartUploadParts", &object()),
            "DeleteObject" => self.need(role, "s3:DeleteObject", &object()),
            // Each key is checked once the request body is read (`delete_objects` below).
            "DeleteObjects" => Ok(()),
            "ListObjects" | "ListObjectsV2" | "HeadBucket" => {
                self.need(role, "s3:ListBucket", &bucket_arn(&bucket))
            }
            "ListObjectVersions" => self.need(role, "s3:ListBucketVersions", &bucket_arn(&bucket)),
            "ListMultipartUploads" => {
                self.need(role, "s3:ListBucketMultipartUploads", &bucket_arn(&bucket))
            }
            other => self.need(
                role,
                &format!("s3:{other} (not modelled)"),
                &bucket_arn(&bucket),
            ),
        }
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        let Some(role) = self.role(req.credentials.as_ref())? else {
            return Ok(());
        };
        for object in &req.input.delete.objects {
            self.need(
                role,
                "s3:DeleteObject",
                &object_arn(&req.input.bucket, &object.key),
            )?;
        }
        Ok(())
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        let Some(role) = self.role(req.credentials.as_ref())? else {
            return Ok(());
        };
        match &req.input.copy_source {
            CopySource::Bucket { bucket, key, .. } => {
                self.need(role, "s3:GetObject", &object_arn(bucket, key))
            }
            _ => self.need(role, "s3:GetObject (access point)", "*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRANTS: &str = r#"{
        "lander": [
            {"sid": "Land", "actions": ["s3:PutObject"], "resources": ["{raw}/kafka/*"]},
            {"sid": "List", "actions": ["s3:ListBucket"], "resources": ["{raw}"]}
        ]
    }"#;

    #[test]
    fn statements_match_actions_and_resource_patterns_in_the_test_buckets() {
        let g = Grants::from_json(GRANTS, &[("raw", "raw"), ("raw", "raw2")]).expect("grants");
        assert_eq!(
            g.allows(
                "lander",
                "s3:PutObject",
                "arn:aws:s3:::raw/kafka/a/b.csv.gz"
            ),
            Some("Land")
        );
        assert!(
            g.allows("lander", "s3:PutObject", "arn:aws:s3:::raw2/kafka/x")
                .is_some()
        );
        assert_eq!(
            g.allows("lander", "s3:GetObject", "arn:aws:s3:::raw/kafka/x"),
            None
        );
        assert_eq!(
            g.allows("lander", "s3:PutObject", "arn:aws:s3:::raw/holdings/x"),
            None
        );
        assert_eq!(
            g.allows("lander", "s3:PutObject", "arn:aws:s3:::processed/kafka/x"),
            None
        );
        assert_eq!(
            g.allows("lander", "s3:ListBucket", "arn:aws:s3:::raw"),
            Some("List")
        );
        assert_eq!(
            g.allows("lander", "s3:ListBucket", "arn:aws:s3:::raw/"),
            None
        );
        assert_eq!(
            g.allows("nobody", "s3:ListBucket", "arn:aws:s3:::raw"),
            None
        );
    }

    #[test]
    fn wildcards_are_iam_s() {
        assert!(wildcard("a*", "a/b/c"));
        assert!(wildcard("a/*/c", "a/b/x/c"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(!wildcard("a/*/c", "a/b/d"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("ab", "abc"));
    }
}
