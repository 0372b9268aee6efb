//! `quicktalk admin grant USERNAME ROLE` (contract §5): sets a registered user's
//! role straight in the database named by the same options as `serve`, with or
//! without a server running on it (SQLite: WAL and a busy timeout let a second
//! process write; PostgreSQL: any number of clients). A running server reads
//! roles from the store for admin routes and `GET /me`, so the change counts
//! there at once (elsewhere within the authentication cache's expiry).

use std::process::ExitCode;

use crate::config::{AdminArgs, AdminCommand, Database};
use crate::model::{Role, User};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

pub fn run(args: AdminArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quicktalk: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.command {
        AdminCommand::Grant {
            username,
            role,
            store,
        } => {
            let outcome = rt.block_on(async {
                let config = store.resolve()?;
                grant(
                    config.database()?,
                    config.sqlite_synchronous,
                    &username,
                    role,
                )
                .await
            });
            match outcome {
                Ok(Some(user)) => {
                    println!(
                        "{} (user {}) is now {}",
                        user.username.as_deref().unwrap_or(&username),
                        user.id,
                        user.role.as_str()
                    );
                    ExitCode::SUCCESS
                }
                Ok(None) => {
                    eprintln!("quicktalk: no registered user is named {username:?}");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("quicktalk: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Sets `username`'s role; `None` when there is no such registered user.
async fn grant(
    db: Database,
    sync: crate::store::sqlite::Synchronous,
    username: &str,
    role: Role,
) -> anyhow::Result<Option<User>> {
    let store: Box<dyn Store> = match db {
        Database::Sqlite(path) => {
            // Never create an empty database: the data dir is probably wrong.
            if !path.exists() {
                anyhow::bail!(
                    "no database at {} (check --data-dir / --database-url)",
                    path.display()
                );
            }
            Box::new(tokio::task::spawn_blocking(move || SqliteStore::open(&path, sync)).await??)
        }
        Database::Postgres(url) => Box::new(PostgresStore::open(&url, 1).await?),
    };
    Ok(store.set_role(username, role).await?)
}
