//! The S3 backend: any S3-compatible server (AWS, MinIO, Garage) through
//! the `minio` crate, path-style, signing for the configured region.

use bytes::Bytes;
use minio::s3::builders::ObjectContent;
use minio::s3::creds::StaticProvider;
use minio::s3::error::{Error as MinioError, S3ServerError};
use minio::s3::http::BaseUrl;
use minio::s3::minio_error_response::MinioErrorCode;
use minio::s3::multimap_ext::Multimap;
use minio::s3::types::{Region, S3Api};
use minio::s3::MinioClient;

use crate::presign::Presigner;
use crate::Secret;
use crate::{validate_key, Listed, ObjectKind, ObjectStore, StoreError};

/// Where an S3 store is and how to sign for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// Endpoint URL, e.g. `http://127.0.0.1:3900`.
    pub endpoint: String,
    /// Bucket name.
    pub bucket: String,
    /// Region to sign for (Garage's default is "garage").
    pub region: String,
    /// Key prefix inside the bucket, without slashes at the ends.
    pub prefix: Option<String>,
    /// Access key.
    pub access_key: Secret,
    /// Secret key.
    pub secret_key: Secret,
    /// [`S3Store::check`] creates the bucket when it is missing.
    pub create_bucket: bool,
}

/// A store in an S3 bucket, under an optional key prefix.
pub struct S3Store {
    client: MinioClient,
    presigner: Presigner,
    endpoint: String,
    bucket: String,
    prefix: String,
    create_bucket: bool,
}

/// The causes of an error, outermost first. The crate's own texts often
/// hide the cause ("Network error occurred"); the chain has it.
fn causes(e: &MinioError) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut out: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(s) = out.last().and_then(|e| e.source()) {
        out.push(s);
    }
    out
}

/// The server could not be reached at all (refused, reset, timed out,
/// unknown host): an I/O error lies somewhere in the chain, or the crate
/// calls it a network error.
fn unreachable(e: &MinioError) -> bool {
    matches!(e, MinioError::Network(_))
        || causes(e)
            .iter()
            .any(|c| c.downcast_ref::<std::io::Error>().is_some())
}

/// What went wrong with a request, as an operator needs to read it.
fn explain(endpoint: &str, e: &MinioError) -> String {
    if unreachable(e) {
        let last = causes(e).last().map(|c| c.to_string()).unwrap_or_default();
        return format!("cannot reach {endpoint}: {last}");
    }
    match e {
        MinioError::S3Server(S3ServerError::S3Error(r)) => {
            let message = r.message().clone().unwrap_or_default();
            match r.code() {
                MinioErrorCode::AccessDenied => format!(
                    "access denied (check the credentials and the key's permissions): {message}"
                ),
                MinioErrorCode::OtherError(code) if CREDENTIAL_ERRORS.contains(&code.as_str()) => {
                    format!("credentials refused ({code}): {message}")
                }
                code => format!("{code:?}: {message}"),
            }
        }
        other => causes(other)
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(": "),
    }
}

/// Why [`S3Store::check`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// The `[storage]` key at fault: endpoint, access_key or bucket.
    pub key: &'static str,
    /// What went wrong.
    pub reason: String,
    /// The endpoint could not be reached (it may come back).
    pub unreachable: bool,
}

/// `access_key` when the server refused the credentials, else `key`.
fn credentials_or(key: &'static str, e: &MinioError) -> &'static str {
    match e {
        MinioError::S3Server(S3ServerError::S3Error(r)) => match r.code() {
            MinioErrorCode::AccessDenied => "access_key",
            MinioErrorCode::OtherError(c) if CREDENTIAL_ERRORS.contains(&c.as_str()) => {
                "access_key"
            }
            _ => key,
        },
        _ => key,
    }
}

/// Error codes that mean the credentials themselves were refused.
const CREDENTIAL_ERRORS: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AuthorizationHeaderMalformed",
];

fn is_code(e: &MinioError, want: MinioErrorCode) -> bool {
    matches!(e, MinioError::S3Server(S3ServerError::S3Error(r)) if r.code() == want)
}

impl S3Store {
    /// A client for the endpoint and bucket. Nothing is sent yet (see
    /// [`S3Store::check`]).
    pub fn new(cfg: &S3Settings) -> Result<Self, StoreError> {
        let endpoint = cfg.endpoint.clone();
        let fail = |reason: String| StoreError::Backend {
            op: "connect",
            key: endpoint.clone(),
            reason,
            source: None,
        };
        let mut base: BaseUrl = endpoint
            .parse()
            .map_err(|e| fail(format!("not an endpoint URL: {e}")))?;
        // Without this, the crate signs for us-east-1 on non-AWS hosts and
        // servers with their own region (Garage) refuse every request.
        base.region = Region::new(cfg.region.clone()).map_err(|e| fail(e.to_string()))?;
        base.virtual_style = false;
        let (access, secret) = (&cfg.access_key, &cfg.secret_key);
        let provider = StaticProvider::new(access.expose(), secret.expose(), None);
        let bucket = cfg.bucket.clone();
        let presigner = Presigner::new(
            &endpoint,
            &bucket,
            &cfg.region,
            access.expose(),
            secret.clone(),
        )
        .map_err(fail)?;
        // With the region set, the crate signs for it without asking the
        // server (its `skip_region_lookup` would sign for us-east-1).
        let client = MinioClient::new(base, Some(provider), None, None)
            .map_err(|e| fail(explain(&endpoint, &e)))?;
        Ok(S3Store {
            client,
            presigner,
            endpoint,
            bucket,
            create_bucket: cfg.create_bucket,
            prefix: cfg
                .prefix
                .clone()
                .map(|p| format!("{p}/"))
                .unwrap_or_default(),
        })
    }

    /// Reaches the endpoint and finds the bucket (creating it if the
    /// settings say so). Says precisely what is wrong: an unreachable
    /// endpoint, refused credentials, or no bucket.
    pub async fn check(&self) -> Result<(), CheckFailure> {
        let fail = |key, e: &MinioError| CheckFailure {
            key,
            reason: explain(&self.endpoint, e),
            unreachable: unreachable(e),
        };
        let invalid = |e| fail("bucket", &MinioError::Validation(e));
        let exists = self
            .client
            .bucket_exists(&self.bucket)
            .map_err(invalid)?
            .build()
            .send()
            .await
            .map_err(|e| fail(credentials_or("endpoint", &e), &e))?
            .exists();
        if exists {
            return Ok(());
        }
        if !self.create_bucket {
            return Err(CheckFailure {
                key: "bucket",
                reason: format!(
                    "bucket \"{}\" does not exist at {} (create it, or set create_bucket = true)",
                    self.bucket, self.endpoint
                ),
                unreachable: false,
            });
        }
        self.client
            .create_bucket(&self.bucket)
            .map_err(invalid)?
            .build()
            .send()
            .await
            .map_err(|e| {
                let mut f = fail(credentials_or("bucket", &e), &e);
                f.reason = format!("cannot create bucket \"{}\": {}", self.bucket, f.reason);
                f
            })?;
        tracing::info!(bucket = %self.bucket, "created the bucket");
        Ok(())
    }

    fn object(&self, key: &str) -> Result<String, StoreError> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn error(&self, op: &'static str, key: &str, e: MinioError) -> StoreError {
        let (key, reason) = (key.to_string(), explain(&self.endpoint, &e));
        let gone = unreachable(&e);
        let source = Some(e.into());
        match gone {
            true => StoreError::Unreachable {
                op,
                key,
                reason,
                source,
            },
            false => StoreError::Backend {
                op,
                key,
                reason,
                source,
            },
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: Bytes, kind: ObjectKind) -> Result<(), StoreError> {
        let object = self.object(key)?;
        let mut headers = Multimap::new();
        headers.insert("Cache-Control".into(), kind.cache_control().into());
        self.client
            .put_object_content(&self.bucket, object.as_str(), ObjectContent::from(body))
            .map_err(|e| self.error("put", key, e.into()))?
            .content_type(Some(kind.content_type().to_string()))
            .extra_headers(Some(headers))
            .build()
            .send()
            .await
            .map_err(|e| self.error("put", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let object = self.object(key)?;
        let response = self
            .client
            .get_object(&self.bucket, object.as_str())
            .map_err(|e| self.error("get", key, e.into()))?
            .build()
            .send()
            .await;
        match response {
            Ok(r) => r
                .into_bytes()
                .await
                .map(Some)
                .map_err(|e| self.error("get", key, e)),
            Err(e) if is_code(&e, MinioErrorCode::NoSuchKey) => Ok(None),
            Err(e) => Err(self.error("get", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        use futures_util::StreamExt;
        use minio::s3::types::ToStream;
        let object = self.object(prefix.trim_end_matches('/'))? + "/";
        let mut pages = self
            .client
            .list_objects(&self.bucket)
            .map_err(|e| self.error("list", prefix, e.into()))?
            .prefix(Some(object))
            .recursive(true)
            .build()
            .to_stream()
            .await;
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("list", prefix, e))?;
            keys.extend(page.contents.into_iter().filter_map(|e| {
                Some(Listed {
                    key: e.name.strip_prefix(&self.prefix)?.to_string(),
                    size: e.size.unwrap_or(0),
                })
            }));
        }
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let object = self.object(key)?;
        self.client
            .delete_object(&self.bucket, object.as_str())
            .map_err(|e| self.error("delete", key, e.into()))?
            .build()
            .send()
            .await
            .map_err(|e| self.error("delete", key, e))?;
        Ok(())
    }

    async fn presign_get(
        &self,
        key: &str,
        expiry: std::time::Duration,
    ) -> Result<String, StoreError> {
        let object = self.object(key)?;
        Ok(self
            .presigner
            .presign_get(&object, expiry, std::time::SystemTime::now()))
    }

    fn describe(&self) -> String {
        format!(
            "s3 {}/{}/{}",
            self.endpoint.trim_end_matches('/'),
            self.bucket,
            self.prefix
        )
    }
}
