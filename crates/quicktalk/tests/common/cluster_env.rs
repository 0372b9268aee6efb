//! The services of a multi-node test: one PostgreSQL database and one
//! Kafka-protocol broker (`QUICKTALK_TEST_POSTGRES_URL`,
//! `QUICKTALK_TEST_KAFKA_BROKERS`), with a schema and a topic prefix of the
//! test's own. Shared by the in-process (`api`) and binary (`process`) suites.

pub struct ClusterEnv {
    /// The database as configured.
    pub url: String,
    /// `url` inside this test's schema.
    pub db_url: String,
    pub brokers: String,
    pub schema: String,
    /// Topic prefix of this test's cluster.
    pub prefix: String,
    /// `--media-store` every node of the test shares: a fresh bucket on the
    /// S3 server of `QUICKTALK_TEST_S3_URL` when set, else a directory all
    /// nodes use with `--media-store-shared` (they run on one machine).
    pub media_store: String,
    pub media_shared: bool,
}

/// A fresh schema and topic prefix named after `kind` and `tag`, or `None`
/// (said loudly, as `suite`) when a service is not configured; under CI a
/// missing one fails the test.
pub async fn cluster_env(suite: &str, kind: &str, tag: &str) -> Option<ClusterEnv> {
    let (Ok(url), Ok(brokers)) = (
        std::env::var("QUICKTALK_TEST_POSTGRES_URL"),
        std::env::var("QUICKTALK_TEST_KAFKA_BROKERS"),
    ) else {
        crate::skip::skip(
            suite,
            "QUICKTALK_TEST_POSTGRES_URL or QUICKTALK_TEST_KAFKA_BROKERS is not set",
            "start PostgreSQL and a Kafka-protocol broker (see .ci/run) and set both",
        );
        return None;
    };
    let id = format!("{tag}_{}_{:x}", std::process::id(), rand::random::<u32>());
    let PgSchema {
        url,
        db_url,
        schema,
    } = create_schema(url, &format!("qt_{kind}_{id}")).await;
    let (media_store, media_shared) = media_store(&id).await;
    Some(ClusterEnv {
        media_store,
        media_shared,
        db_url,
        url,
        brokers,
        schema,
        prefix: format!("qt{kind}{id}"),
    })
}

/// A schema of a test's own in `QUICKTALK_TEST_POSTGRES_URL`'s database.
pub struct PgSchema {
    pub url: String,
    /// `url` inside the schema.
    pub db_url: String,
    pub schema: String,
}

/// A fresh schema for a test that needs PostgreSQL but no broker, or `None`
/// (said loudly, as `suite`) when it is not configured; under CI a missing one
/// fails the test.
#[allow(dead_code)]
pub async fn pg_schema(suite: &str, kind: &str) -> Option<PgSchema> {
    let Ok(url) = std::env::var("QUICKTALK_TEST_POSTGRES_URL") else {
        crate::skip::skip(
            suite,
            "QUICKTALK_TEST_POSTGRES_URL is not set",
            "set it to e.g. postgres://postgres:postgres@127.0.0.1:5432/test",
        );
        return None;
    };
    let name = format!(
        "qt_{kind}_{}_{:x}",
        std::process::id(),
        rand::random::<u32>()
    );
    Some(create_schema(url, &name).await)
}

async fn create_schema(url: String, schema: &str) -> PgSchema {
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("connecting to PostgreSQL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .expect("creating the test schema");
    pool.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    PgSchema {
        db_url: format!("{url}{sep}options=-c%20search_path%3D{schema}"),
        url,
        schema: schema.to_owned(),
    }
}

impl PgSchema {
    #[allow(dead_code)]
    pub async fn drop_schema(&self) {
        drop_schema(&self.url, &self.schema).await;
    }
}

async fn drop_schema(url: &str, schema: &str) {
    if let Ok(pool) = sqlx::PgPool::connect(url).await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&pool)
            .await;
    }
}

/// See [`ClusterEnv::media_store`].
async fn media_store(id: &str) -> (String, bool) {
    match crate::s3_env::s3_bucket(id).await {
        Some(spec) => (spec, false),
        None => {
            let dir = std::env::temp_dir().join(format!("qt-cluster-media-{id}"));
            (format!("file://{}", dir.display()), true)
        }
    }
}

impl ClusterEnv {
    pub async fn drop_schema(&self) {
        drop_schema(&self.url, &self.schema).await;
    }
}
