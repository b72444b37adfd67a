//! A bus that spans instances: what one instance publishes, every instance's subscribers receive.
//!
//! Every instance keeps an in-process broadcast channel. On SQLite a message goes straight into it. On
//! PostgreSQL it is published with `NOTIFY` on the bus's channel instead, and every instance that has
//! subscribers relays the notifications of its `LISTEN` connection into its broadcast (its own included).
//! The relay starts with the first subscription; notifications sent while it is not listening (before it
//! starts, while it reconnects) are lost, so subscribers that must not miss one also re-read the record.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// Messages a slow subscriber may fall behind by before it skips some.
const BROADCAST_CAPACITY: usize = 1024;

/// How long the relay waits before listening again after its connection failed.
const RELAY_RETRY: Duration = Duration::from_secs(2);

/// One kind of message, on its own channel; one per instance, in the state.
pub struct Bus<T> {
    /// The PostgreSQL notification channel.
    channel: &'static str,
    sender: broadcast::Sender<Arc<T>>,
    db: DatabaseConnection,
    shutdown: CancellationToken,
    relay_started: Mutex<bool>,
    /// Whether the PostgreSQL relay is listening (notifications before that are not relayed).
    relay_listening: Arc<watch::Sender<bool>>,
}

impl<T> Bus<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub fn new(channel: &'static str, db: DatabaseConnection, shutdown: CancellationToken) -> Self {
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        Self {
            channel,
            sender,
            db,
            shutdown,
            relay_started: Mutex::new(false),
            relay_listening: Arc::new(watch::Sender::new(false)),
        }
    }

    fn on_postgres(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
    }

    /// Publishes a message to every instance's subscribers. Never fails: a message that cannot be
    /// notified is logged and delivered on this instance only.
    pub async fn publish(&self, message: T) {
        if self.on_postgres() {
            match serde_json::to_string(&message) {
                Ok(payload) => {
                    let notify = Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "SELECT pg_notify($1, $2)",
                        [self.channel.into(), payload.into()],
                    );
                    match self.db.execute_raw(notify).await {
                        Ok(_) => return,
                        Err(e) => {
                            tracing::warn!(channel = self.channel, error = %e, "NOTIFY failed; delivered on this instance only");
                        }
                    }
                }
                Err(e) => tracing::warn!(channel = self.channel, error = %e, "bus message not serialisable"),
            }
        }
        // No receiver is not an error: nobody is listening.
        let _ = self.sender.send(Arc::new(message));
    }

    /// Every message published from now on, on any instance. A receiver too slow to keep up is told how
    /// many it missed (`Lagged`); it is closed with the bus.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<T>> {
        let receiver = self.sender.subscribe();
        self.start_relay();
        receiver
    }

    /// The subscribers on this instance that a message published now, on any instance, would reach: a
    /// readiness signal for whoever publishes and wants it received.
    pub fn live_subscribers(&self) -> usize {
        if self.on_postgres() && !*self.relay_listening.borrow() {
            return 0;
        }
        self.sender.receiver_count()
    }

    /// On PostgreSQL, starts relaying notifications into the broadcast (once per instance).
    fn start_relay(&self) {
        if !self.on_postgres() {
            return;
        }
        let mut started = self.relay_started.lock().unwrap_or_else(PoisonError::into_inner);
        if *started {
            return;
        }
        *started = true;
        let pool = self.db.get_postgres_connection_pool().clone();
        let sender = self.sender.clone();
        let shutdown = self.shutdown.clone();
        let listening = self.relay_listening.clone();
        let channel = self.channel;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    result = relay(&pool, channel, &sender, &listening) => {
                        listening.send_replace(false);
                        if let Err(e) = result {
                            tracing::warn!(channel, error = %e, "bus relay lost its connection; listening again");
                        }
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RELAY_RETRY) => {}
                }
            }
        });
    }
}

/// Listens on `channel` and forwards every readable payload until the connection fails.
async fn relay<T: DeserializeOwned>(
    pool: &sea_orm::sqlx::PgPool,
    channel: &str,
    sender: &broadcast::Sender<Arc<T>>,
    listening: &watch::Sender<bool>,
) -> Result<(), sea_orm::sqlx::Error> {
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    listening.send_replace(true);
    loop {
        let notification = listener.recv().await?;
        match serde_json::from_str::<T>(notification.payload()) {
            Ok(message) => {
                let _ = sender.send(Arc::new(message));
            }
            Err(e) => tracing::debug!(channel, error = %e, "unreadable notification ignored"),
        }
    }
}
