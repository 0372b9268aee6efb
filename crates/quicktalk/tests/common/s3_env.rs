//! A fresh bucket on the S3-compatible server of `QUICKTALK_TEST_S3_URL`
//! (moto in CI), as a `--media-store` spec. Shared by every suite that puts
//! media on S3.

/// `s3://<bucket>?endpoint=…&region=us-east-1` for a new bucket named from
/// `tag`, or `None` when `QUICKTALK_TEST_S3_URL` is not set (the caller
/// decides whether that is a skip). Sets dummy AWS credentials unless real
/// ones are in the environment (a local S3 server takes any).
pub async fn s3_bucket(tag: &str) -> Option<String> {
    let url = std::env::var("QUICKTALK_TEST_S3_URL").ok()?;
    let url = url.trim_end_matches('/').to_owned();
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ] {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
    // Bucket names: 3–63 of lowercase letters, digits and `-`.
    let raw = format!(
        "qt-{tag}-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let bucket: String = raw
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    let created = reqwest::Client::new()
        .put(format!("{url}/{bucket}"))
        .send()
        .await
        .expect("reaching the S3 server");
    assert!(
        created.status().is_success(),
        "creating bucket {bucket}: {}",
        created.status()
    );
    Some(format!("s3://{bucket}?endpoint={url}&region=us-east-1"))
}
