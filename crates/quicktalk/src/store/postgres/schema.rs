//! A private schema per test or bench run, so runs can share one database
//! without seeing each other.

use std::str::FromStr;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::PostgresStore;

impl PostgresStore {
    /// Like [`open`](Self::open), inside `schema` (created if missing): lets tests
    /// share one database without seeing each other.
    pub async fn open_in_schema(url: &str, schema: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad schema name {schema:?}"
        );
        let opts = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&admin)
            .await?;
        admin.close().await;
        Self::open_with(opts.options([("search_path", schema)]), 8).await
    }
}
