//! `event_search_tokens`: the blind index of the events' texts (see [`crate::events::search`]). A row
//! holds a keyed digest of one word (or word beginning) of an event, never the word. Rows go with their
//! event (ON DELETE CASCADE).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_search_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: Uuid,
    /// HMAC digest under the user's search key ([`crate::crypto::BlindIndex`]).
    #[sea_orm(primary_key, auto_increment = false, column_type = "Blob")]
    pub token: Vec<u8>,
    /// Id of the master key the digest depends on.
    #[sea_orm(column_type = "String(StringLen::N(16))")]
    pub key_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::events::Entity",
        from = "Column::EventId",
        to = "super::events::Column::Id",
        on_update = "Cascade",
        on_delete = "Cascade"
    )]
    Events,
}

impl Related<super::events::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Events.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
