//! The request semantics shared by the socket.io handlers and the REST twin: which method is
//! allowed on which endpoint, item validation, id consistency, and read queries.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::identity::Identity;
use crate::ids::{self, IdKind};
use crate::live::Live;
pub use crate::method::Method;
use crate::order::Lane;
use crate::public::PublicPrefixes;
use crate::reads::CollectionRead;
use crate::store::change::Origin;
use crate::store::{Applied, Object, Query, Store, Write, WriteOp};

/// One request, transport-independent.
#[derive(Debug, Clone)]
pub struct Request {
    /// What to do.
    pub method: Method,
    /// `signature.endPoint` (or the REST path).
    pub endpoint: String,
    /// The model's attributes for create/update/patch.
    pub item: Option<Value>,
    /// Read filters and paging (`_limit`, `_offset`).
    pub data: Option<Value>,
    /// `signature.requestId` (or the REST `X-Request-Id` header).
    pub request_id: Option<String>,
    /// A write's condition: `signature.ifVersion` (or the REST `If-Match` header); see
    /// [`Write::if_version`]. Ignored by reads.
    pub if_version: Option<i64>,
    /// Whose documents it touches and where its request id is looked up.
    pub identity: Identity,
}

/// A request's answer.
#[derive(Debug)]
pub struct Answer {
    /// The reply: the model, or `{}` for a delete (`null` for a collection read).
    pub value: Value,
    /// True when a write was answered from its request id without being applied again.
    pub replayed: bool,
    /// The model's version: after a write, or as read (`None` for a collection read).
    pub version: Option<i64>,
    /// A collection read, to be run by the transport: its models go from the store's text to
    /// the reply without being held as values (see [`crate::reads`]).
    pub collection: Option<CollectionRead>,
}

/// Default of `--max-read`: models in one collection read (the 10k benchmark fits).
pub const DEFAULT_MAX_READ: u64 = 10_000;
/// Default of `--max-read-bytes`: JSON text of the models in one collection read.
pub const DEFAULT_MAX_READ_BYTES: usize = 64 << 20;

/// The shared request handler: a store plus the api prefix.
#[derive(Clone)]
pub struct Api {
    store: Arc<dyn Store>,
    prefix: String,
    live: Live,
    max_read: u64,
    max_read_bytes: usize,
    public: Arc<PublicPrefixes>,
}

impl Api {
    /// An api serving endpoints under `prefix` (e.g. `/api`) from `store`.
    pub fn new(store: Arc<dyn Store>, prefix: impl Into<String>) -> Self {
        Self {
            store,
            prefix: prefix.into(),
            live: Live::default(),
            max_read: DEFAULT_MAX_READ,
            max_read_bytes: DEFAULT_MAX_READ_BYTES,
            public: Arc::default(),
        }
    }

    /// Bounds every collection read to `max_models` models and `max_bytes` of their JSON
    /// text, also when the client asks for more with `_limit`.
    pub fn with_read_bounds(mut self, max_models: u64, max_bytes: usize) -> Self {
        self.max_read = max_models.max(1);
        self.max_read_bytes = max_bytes.max(1);
        self
    }

    /// Serves the shared documents of collections under `public` read-only to every user
    /// (see [`crate::public`]).
    pub fn with_public(mut self, public: PublicPrefixes) -> Self {
        self.public = Arc::new(public);
        self
    }

    /// Whose documents of `collection` a request of `owner` reaches: the shared ones (`""`)
    /// in a public collection (see [`crate::public`]), else the owner's own. A subscription
    /// joins the room of that owner, so a signed-in subscriber of a public collection hears
    /// its changes.
    pub fn owner_in<'a>(&self, owner: &'a str, collection: &str) -> &'a str {
        if self.public.covers(collection) {
            ""
        } else {
            owner
        }
    }

    /// The api prefix, e.g. `/api`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The live broadcaster shared by every transport (see [`crate::live`]).
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// The store behind this api.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Validates and runs a request; resolves after the write (if any) is committed, telling
    /// whether a write was replayed from its request id (reads are never replayed). Callers
    /// go through [`crate::dispatch::execute`], which also broadcasts the change.
    pub async fn execute(&self, request: Request) -> Result<Answer, ApiError> {
        self.start(request, None, None).await
    }

    /// Starts a request in `lane`'s order, if it has one (see [`crate::order`]): it is
    /// validated now and, when it is a write that may go ahead, queued in the store now; the
    /// future waits for its turn and its result. A write sent by the socket `origin` is
    /// stored with it, for its broadcast (see [`Store::write_from`]).
    pub fn start(
        &self,
        request: Request,
        lane: Option<&Arc<Lane>>,
        origin: Option<Origin>,
    ) -> Pin<Box<dyn Future<Output = Result<Answer, ApiError>> + Send + 'static>> {
        let planned = match self.plan(request) {
            Ok(planned) => planned,
            Err(error) => return Box::pin(std::future::ready(Err(error))),
        };
        let store = self.store.clone();
        let (max_read, max_read_bytes) = (self.max_read, self.max_read_bytes);
        let write = match planned {
            Planned::Write(write) => write,
            read => {
                let turn = lane.map(|lane| lane.read());
                return Box::pin(async move {
                    let turn = match turn {
                        Some((ticket, ready)) => {
                            // None: the client's connection is gone; nobody to answer.
                            let slot = ready.await.ok_or_else(ApiError::internal)?;
                            Some((ticket, slot))
                        }
                        None => None,
                    };
                    let (value, version, collection) = match read {
                        Planned::ReadCollection(owner, collection, mut query) => {
                            let asked = query.limit;
                            query.limit = Some(asked.map_or(max_read, |l| l.min(max_read)));
                            let read = CollectionRead {
                                store,
                                owner,
                                collection,
                                query,
                                asked,
                                max_bytes: max_read_bytes,
                                turn,
                            };
                            (Value::Null, None, Some(read))
                        }
                        Planned::ReadModel(owner, collection, id) => {
                            let stored = store.read_model(&owner, &collection, &id).await?;
                            (stored.value, Some(stored.version), None)
                        }
                        Planned::Write(_) => unreachable!("handled above"),
                    };
                    Ok(Answer {
                        value,
                        replayed: false,
                        version,
                        collection,
                    })
                });
            }
        };
        let Some(lane) = lane else {
            let queued = store.write_from(write, origin);
            return Box::pin(async move { Ok(answer(queued.await?)) });
        };
        let (ticket, turn) = lane.write(move || store.write_from(write, origin));
        Box::pin(async move {
            let queued = turn.await.ok_or_else(ApiError::internal)?;
            let applied = queued.await;
            drop(ticket);
            Ok(answer(applied?))
        })
    }

    /// Validates a request and says what it does.
    fn plan(&self, request: Request) -> Result<Planned, ApiError> {
        let endpoint = Endpoint::parse(&request.endpoint, &self.prefix)?;
        let mut owner = request.identity.owner.clone();
        if !owner.is_empty() && self.public.covers(endpoint.collection()) {
            if request.method != Method::Read {
                return Err(ApiError::new(403, "this collection is read-only"));
            }
            owner = String::new(); // the shared documents
        }
        let request_id = request.request_id.map(|id| request.identity.request_id(id));
        let op = match (request.method, endpoint) {
            (Method::Read, Endpoint::Collection(collection)) => {
                let query = parse_query(request.data)?;
                return Ok(Planned::ReadCollection(owner, collection, query));
            }
            (Method::Read, Endpoint::Model { collection, id }) => {
                return Ok(Planned::ReadModel(owner, collection, id));
            }
            (Method::Create, Endpoint::Collection(collection)) => WriteOp::Create {
                collection,
                item: item_object(request.item)?,
            },
            (Method::Update, Endpoint::Model { collection, id }) => {
                let item = with_consistent_id(item_object(request.item)?, &id)?;
                WriteOp::Update {
                    collection,
                    id,
                    item,
                }
            }
            (Method::Patch, Endpoint::Model { collection, id }) => {
                let item = with_consistent_id(item_object(request.item)?, &id)?;
                WriteOp::Patch {
                    collection,
                    id,
                    item,
                }
            }
            (Method::Delete, Endpoint::Model { collection, id }) => {
                WriteOp::Delete { collection, id }
            }
            (Method::Create, Endpoint::Model { .. }) => {
                return Err(ApiError::bad_request("create needs a collection endPoint"))
            }
            (method, Endpoint::Collection(_)) => {
                return Err(ApiError::bad_request(format!(
                    "{} needs a model endPoint",
                    method.name()
                )))
            }
        };
        Ok(Planned::Write(Write {
            owner,
            op,
            request_id,
            if_version: request.if_version,
        }))
    }
}

/// What a valid request does (reads name their owner, collection and query or id).
enum Planned {
    ReadCollection(String, String, Query),
    ReadModel(String, String, String),
    Write(Write),
}

fn answer(applied: Applied) -> Answer {
    Answer {
        value: applied.value,
        replayed: applied.replayed,
        version: Some(applied.version),
        collection: None,
    }
}

fn item_object(item: Option<Value>) -> Result<Object, ApiError> {
    match item {
        Some(Value::Object(item)) => Ok(item),
        Some(_) => Err(ApiError::bad_request("item must be a JSON object")),
        None => Err(ApiError::bad_request("item is missing")),
    }
}

/// Checks that an item's `id`, if any, names the endpoint's model, and sets it when absent
/// (a number when the id segment is an integer id, else the string); an integer id segment
/// outside 1..=2^53−1 is refused unless the item names it as a string (see [`crate::ids`]).
fn with_consistent_id(mut item: Object, id: &str) -> Result<Object, ApiError> {
    let out_of_range = ids::kind(id) == IdKind::OutOfRange;
    match item.get("id") {
        None | Some(Value::Null) if out_of_range => return Err(ids::out_of_range()),
        None | Some(Value::Null) => {
            item.insert("id".into(), ids::value(id));
        }
        Some(Value::String(s)) if s == id => {}
        Some(Value::Number(n)) if n.to_string() == id && out_of_range => {
            return Err(ids::out_of_range())
        }
        Some(Value::Number(n)) if n.to_string() == id => {}
        Some(_) => return Err(ApiError::bad_request("item id does not match the endPoint")),
    }
    Ok(item)
}

/// Turns read `data` into a query: `_limit` and `_offset` (non-negative integers, or strings of
/// them as a query string gives) page, every other key is an equality filter.
fn parse_query(data: Option<Value>) -> Result<Query, ApiError> {
    let mut query = Query::default();
    let data = match data {
        None | Some(Value::Null) => return Ok(query),
        Some(Value::Object(data)) => data,
        Some(_) => return Err(ApiError::bad_request("data must be a JSON object")),
    };
    for (key, value) in data {
        match key.as_str() {
            "_limit" => query.limit = Some(non_negative(&key, &value)?),
            "_offset" => query.offset = non_negative(&key, &value)?,
            _ => {
                query.filters.insert(key, value);
            }
        }
    }
    Ok(query)
}

fn non_negative(key: &str, value: &Value) -> Result<u64, ApiError> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| ApiError::bad_request(format!("{key} must be a non-negative integer")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn ids_must_match_the_endpoint() {
        assert_eq!(
            with_consistent_id(obj(json!({})), "5").unwrap()["id"],
            json!(5)
        );
        assert_eq!(
            with_consistent_id(obj(json!({})), "05").unwrap()["id"],
            json!("05")
        );
        assert_eq!(
            with_consistent_id(obj(json!({})), "abc").unwrap()["id"],
            json!("abc")
        );
        assert!(with_consistent_id(obj(json!({"id": 5})), "5").is_ok());
        assert!(with_consistent_id(obj(json!({"id": "5"})), "5").is_ok());
        assert_eq!(
            with_consistent_id(obj(json!({"id": 6})), "5")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            with_consistent_id(obj(json!({"id": true})), "5")
                .unwrap_err()
                .status,
            400
        );
        for out in ["0", "-3", "9007199254740992", "9223372036854775807"] {
            let error = with_consistent_id(obj(json!({})), out).unwrap_err();
            assert_eq!(error.status, 400, "{out}");
            let number: Value = serde_json::from_str(out).unwrap();
            let error = with_consistent_id(obj(json!({ "id": number })), out).unwrap_err();
            assert_eq!(error.status, 400, "{out}");
            let named = with_consistent_id(obj(json!({ "id": out })), out).unwrap();
            assert_eq!(named["id"], json!(out), "a string id");
        }
    }

    #[test]
    fn queries() {
        let q = parse_query(Some(json!({"done": true, "_limit": 2, "_offset": "3"}))).unwrap();
        assert_eq!(q.limit, Some(2));
        assert_eq!(q.offset, 3);
        assert_eq!(q.filters, obj(json!({"done": true})));
        assert!(parse_query(Some(json!({"_limit": -1}))).is_err());
        assert!(parse_query(Some(json!([1]))).is_err());
        assert_eq!(parse_query(None).unwrap(), Query::default());
    }
}
