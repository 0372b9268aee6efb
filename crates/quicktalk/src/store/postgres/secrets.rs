//! Values every node of a cluster must share (the token signing key).

use super::PostgresStore;

impl PostgresStore {
    /// The secret `name`, set to `candidate` by whichever node asks first: every
    /// node of a cluster then signs and checks tokens with the same key.
    pub async fn shared_secret(&self, name: &str, candidate: &[u8]) -> anyhow::Result<Vec<u8>> {
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
