//! Who a request comes from, as far as the store is concerned: whose documents it reads and
//! writes (the owner), and in which scope its request ids are looked up.
//!
//! | authentication | owner        | request-id scope                                       |
//! |----------------|--------------|--------------------------------------------------------|
//! | on             | token `sub`  | `user:<sub>`                                           |
//! | off            | `""` (all)   | `client:<clientId>` when the client declared one, else the shared scope `""` |
//!
//! The shared scope keeps older clients' retries after a reconnection working (they declare no
//! identity); a request id there still answers only a repeat of the very same request (see
//! [`crate::store::Write::fingerprint`]), and with authentication off every document is
//! readable by every client anyway.

use crate::error::ApiError;
use crate::store::RequestId;

/// Longest client id accepted, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 256;

/// The identity a request runs under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Whose documents it reads and writes: the token's `sub`, or `""` with authentication off.
    pub owner: String,
    /// The scope of its request ids.
    pub request_scope: String,
}

impl Identity {
    /// An authenticated user: owns their documents, request ids scoped to them.
    pub fn user(sub: &str) -> Self {
        Self {
            owner: sub.to_owned(),
            request_scope: format!("user:{sub}"),
        }
    }

    /// Authentication off: the shared documents, request ids scoped to `client_id` when the
    /// client declared one (else the shared scope).
    pub fn anonymous(client_id: Option<&str>) -> Self {
        Self {
            owner: String::new(),
            request_scope: client_id.map_or_else(
                || RequestId::SHARED_SCOPE.to_owned(),
                |id| format!("client:{id}"),
            ),
        }
    }

    /// `id` in this identity's request-id scope.
    pub fn request_id(&self, id: String) -> RequestId {
        RequestId::new(self.request_scope.clone(), id)
    }
}

/// Checks a client id (CONNECT `clientId` or REST `X-Client-Id`): 1 to [`MAX_CLIENT_ID_LEN`]
/// bytes of visible ASCII.
pub fn validate_client_id(id: &str) -> Result<&str, ApiError> {
    let visible = id.bytes().all(|b| b.is_ascii_graphic());
    if id.is_empty() || id.len() > MAX_CLIENT_ID_LEN || !visible {
        return Err(ApiError::bad_request(format!(
            "clientId must be 1 to {MAX_CLIENT_ID_LEN} bytes of visible ASCII"
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_never_mix_users_and_clients() {
        assert_eq!(Identity::user("alice").request_scope, "user:alice");
        assert_eq!(
            Identity::anonymous(Some("alice")).request_scope,
            "client:alice"
        );
        assert_eq!(Identity::anonymous(None).request_scope, "");
        assert_eq!(Identity::anonymous(Some("x")).owner, "");
        assert!(validate_client_id("tab-1.a_B").is_ok());
        for bad in ["", "a b", "é", &"x".repeat(257)] {
            assert_eq!(validate_client_id(bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
