//! Backbone's five sync methods: what a request asks, and what a change reports, shared by
//! the api, the broadcaster and the transports.

/// Backbone's five sync methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `create`: POST to a collection.
    Create,
    /// `read`: GET a collection or a model.
    Read,
    /// `update`: PUT a model.
    Update,
    /// `patch`: PATCH a model.
    Patch,
    /// `delete`: DELETE a model.
    Delete,
}

impl Method {
    /// Every method, in Backbone's order.
    pub const ALL: [Method; 5] = [
        Method::Create,
        Method::Read,
        Method::Update,
        Method::Patch,
        Method::Delete,
    ];

    /// The event name / Backbone method name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Create => "create",
            Method::Read => "read",
            Method::Update => "update",
            Method::Patch => "patch",
            Method::Delete => "delete",
        }
    }

    /// The method for an event name, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }
}
