//! The `--media-store` value: `file://DIR` or
//! `s3://BUCKET?endpoint=URL&region=R`, parsed into a [`MediaStoreSpec`].
//!
//! `file://` takes the rest as a path (`file:///var/lib/qt/media`,
//! `file://data/media`). `s3://` takes a bucket name and two optional query
//! parameters, used as written (no percent-decoding): `endpoint`, an `http://`
//! or `https://` URL of an S3-compatible server, addressed path-style; and
//! `region`. Credentials are never part of the spec: they come from the usual
//! AWS environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`…), so they stay out of process listings.

use std::path::PathBuf;
use std::str::FromStr;

/// Longest accepted spec.
pub const MAX_SPEC_LEN: usize = 2048;

/// Which media store to open, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaStoreSpec {
    /// Files under `dir` (one node).
    Local { dir: PathBuf },
    /// An S3-compatible bucket (several nodes).
    S3(S3Config),
}

/// An S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// `None`: AWS itself (or `AWS_ENDPOINT` from the environment).
    pub endpoint: Option<String>,
    /// `None`: `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("media store spec longer than {MAX_SPEC_LEN} bytes")]
    TooLong,
    #[error("media store must be file://DIR or s3://BUCKET[?endpoint=URL&region=R]")]
    UnknownScheme,
    #[error("file:// needs a directory")]
    EmptyDir,
    #[error("bad S3 bucket name {0:?} (3 to 63 of a-z 0-9 . -)")]
    BadBucket(String),
    #[error("bad S3 endpoint {0:?} (an http:// or https:// URL)")]
    BadEndpoint(String),
    #[error("bad S3 region {0:?}")]
    BadRegion(String),
    #[error("unknown or repeated s3:// parameter {0:?} (endpoint, region)")]
    BadParameter(String),
}

impl FromStr for MediaStoreSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        if s.len() > MAX_SPEC_LEN {
            return Err(SpecError::TooLong);
        }
        if let Some(dir) = s.strip_prefix("file://") {
            if dir.is_empty() {
                return Err(SpecError::EmptyDir);
            }
            return Ok(MediaStoreSpec::Local { dir: dir.into() });
        }
        let rest = s.strip_prefix("s3://").ok_or(SpecError::UnknownScheme)?;
        let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && !bucket.starts_with(['.', '-'])
            && !bucket.ends_with(['.', '-']);
        if !bucket_ok {
            return Err(SpecError::BadBucket(bucket.to_owned()));
        }
        let mut config = S3Config {
            bucket: bucket.to_owned(),
            endpoint: None,
            region: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "endpoint" if config.endpoint.is_none() => {
                    let ok = ["http://", "https://"].iter().any(|scheme| {
                        value
                            .strip_prefix(scheme)
                            .is_some_and(|host| !host.is_empty() && !host.starts_with('/'))
                    }) && !value
                        .bytes()
                        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
                    if !ok {
                        return Err(SpecError::BadEndpoint(value.to_owned()));
                    }
                    config.endpoint = Some(value.trim_end_matches('/').to_owned());
                }
                "region" if config.region.is_none() => {
                    let ok = (1..=64).contains(&value.len())
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    if !ok {
                        return Err(SpecError::BadRegion(value.to_owned()));
                    }
                    config.region = Some(value.to_owned());
                }
                _ => return Err(SpecError::BadParameter(name.to_owned())),
            }
        }
        Ok(MediaStoreSpec::S3(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<MediaStoreSpec, SpecError> {
        s.parse()
    }

    #[test]
    fn file_specs_name_a_directory() {
        assert_eq!(
            parse("file:///var/lib/quicktalk/media").unwrap(),
            MediaStoreSpec::Local {
                dir: "/var/lib/quicktalk/media".into()
            }
        );
        assert_eq!(
            parse("file://data/media").unwrap(),
            MediaStoreSpec::Local {
                dir: "data/media".into()
            }
        );
        assert_eq!(parse("file://"), Err(SpecError::EmptyDir));
    }

    #[test]
    fn s3_specs_carry_bucket_endpoint_and_region() {
        assert_eq!(
            parse("s3://qt-media?endpoint=http://127.0.0.1:5000/&region=eu-west-1").unwrap(),
            MediaStoreSpec::S3(S3Config {
                bucket: "qt-media".into(),
                endpoint: Some("http://127.0.0.1:5000".into()),
                region: Some("eu-west-1".into()),
            })
        );
        assert_eq!(
            parse("s3://my.bucket.1").unwrap(),
            MediaStoreSpec::S3(S3Config {
                bucket: "my.bucket.1".into(),
                endpoint: None,
                region: None,
            })
        );
        assert_eq!(
            parse("s3://abc?region=us-east-1").unwrap(),
            MediaStoreSpec::S3(S3Config {
                bucket: "abc".into(),
                endpoint: None,
                region: Some("us-east-1".into()),
            })
        );
    }

    #[test]
    fn malformed_specs_are_refused_with_the_reason() {
        assert_eq!(parse("/var/media"), Err(SpecError::UnknownScheme));
        assert_eq!(parse("gs://bucket"), Err(SpecError::UnknownScheme));
        assert_eq!(parse(&"s".repeat(3000)), Err(SpecError::TooLong));
        for b in [
            "s3://",
            "s3://ab",
            "s3://Upper",
            "s3://-abc",
            "s3://a_b_c",
            "s3://abc./x",
        ] {
            assert!(matches!(parse(b), Err(SpecError::BadBucket(_))), "{b}");
        }
        for e in [
            "s3://abc?endpoint=",
            "s3://abc?endpoint=ftp://x",
            "s3://abc?endpoint=http://",
            "s3://abc?endpoint=http:///x",
            "s3://abc?endpoint=http://a b",
        ] {
            assert!(matches!(parse(e), Err(SpecError::BadEndpoint(_))), "{e}");
        }
        assert!(matches!(
            parse("s3://abc?region="),
            Err(SpecError::BadRegion(_))
        ));
        assert!(matches!(
            parse("s3://abc?region=a/b"),
            Err(SpecError::BadRegion(_))
        ));
        assert_eq!(
            parse("s3://abc?secret=x"),
            Err(SpecError::BadParameter("secret".into()))
        );
        assert_eq!(
            parse("s3://abc?region=a&region=b"),
            Err(SpecError::BadParameter("region".into()))
        );
    }
}
