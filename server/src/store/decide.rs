//! The decision of one write, written once for both stores: given the model as stored (or its
//! absence) and the write, what is stored, what is answered, or why the write is refused.
//! Each backend only reads the row, calls [`decide`] and executes the [`Effect`]; a backend
//! that applies a batch at once (PostgreSQL) folds [`decide`] over the batch's writes, each
//! seeing the state its predecessors left.
//!
//! Versions: a model is at version 1 when created and one more after each write; a write with a
//! condition ([`super::Write::if_version`]) is applied only when the stored version is the one
//! it names (0 names "no such model"), else it is refused with [`StoreError::Conflict`] and
//! nothing changes. The condition is checked before anything else, so a conditional patch of a
//! model deleted meanwhile is a conflict (the client learns it is gone), not a 404.
//!
//! A request record keeps a conflict too ([`Recorded`]), so a replay of the request answers the
//! same conflict.

use serde_json::Value;

use super::{Applied, Object, StoreError, WriteOp};

/// A model as stored before the write.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// Its attributes.
    pub doc: Object,
    /// Its version (1 or more).
    pub version: i64,
}

/// What the backend must do to its row.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Insert or replace the row with this document text at [`Decided::version`].
    Put(String),
    /// Delete the row.
    Remove,
}

/// A write that is to be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// What to do to the row.
    pub effect: Effect,
    /// The reply: the stored model, or `{}` for a delete.
    pub value: Value,
    /// The reply's JSON text (the stored document itself, so no second serialisation), for
    /// the request record and the change feed.
    pub text: String,
    /// The model's version after the write.
    pub version: i64,
}

impl Decided {
    /// The write's answer.
    pub fn applied(&self) -> Applied {
        Applied {
            value: self.value.clone(),
            replayed: false,
            version: self.version,
        }
    }
}

/// Decides `op` against `current`, the model it names as stored now (`None`: no such model; for
/// a create, always `None`). `new_id` is the id a create was given. Documents over
/// `max_doc_bytes` of JSON text are refused ([`StoreError::TooLarge`]).
pub fn decide(
    op: WriteOp,
    if_version: Option<i64>,
    current: Option<Current>,
    new_id: Option<i64>,
    max_doc_bytes: usize,
) -> Result<Decided, StoreError> {
    let stored_version = current.as_ref().map_or(0, |c| c.version);
    if if_version.is_some_and(|want| want != stored_version) {
        return Err(StoreError::Conflict {
            current: current.map_or(Value::Null, |c| Value::Object(c.doc)),
            version: stored_version,
        });
    }
    let version = stored_version + 1;
    let put = |doc: Object| -> Result<Decided, StoreError> {
        let text = to_doc(&doc, max_doc_bytes)?;
        Ok(Decided {
            effect: Effect::Put(text.clone()),
            value: Value::Object(doc),
            text,
            version,
        })
    };
    match op {
        WriteOp::Create { mut item, .. } => {
            let id = new_id.ok_or_else(|| StoreError::Internal("create without an id".into()))?;
            item.insert("id".into(), Value::from(id));
            put(item)
        }
        WriteOp::Update { item, .. } => put(item),
        WriteOp::Patch { item, .. } => {
            let mut stored = current.ok_or(StoreError::NotFound)?.doc;
            for (key, value) in item {
                if key != "id" {
                    stored.insert(key, value);
                }
            }
            put(stored)
        }
        WriteOp::Delete { .. } => {
            current.ok_or(StoreError::NotFound)?;
            Ok(Decided {
                effect: Effect::Remove,
                value: Value::Object(Object::new()),
                text: "{}".into(),
                version,
            })
        }
    }
}

/// The JSON text of a document, refused over `max_doc_bytes`.
pub fn to_doc(doc: &Object, max_doc_bytes: usize) -> Result<String, StoreError> {
    let text = serde_json::to_string(doc).map_err(|e| StoreError::Internal(e.to_string()))?;
    if text.len() > max_doc_bytes {
        return Err(StoreError::TooLarge(max_doc_bytes));
    }
    Ok(text)
}

/// What a request record keeps of its request's outcome: the reply's text and version, or the
/// conflict it met (the stored document's text, `null` for none, and its version).
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The reply's JSON text, or for a conflict the stored document's.
    pub text: String,
    /// The version answered (0 in records written before versions existed).
    pub version: i64,
    /// True when the request met a conflict.
    pub conflict: bool,
}

impl Recorded {
    /// The record of an applied write.
    pub fn applied(decided: &Decided) -> Self {
        Self {
            text: decided.text.clone(),
            version: decided.version,
            conflict: false,
        }
    }

    /// The record of a refusal that must be answered again on a replay (a conflict), or
    /// `None` for one that leaves no record (any other error: the request may be retried).
    pub fn refused(error: &StoreError) -> Option<Self> {
        match error {
            StoreError::Conflict { current, version } => Some(Self {
                text: current.to_string(),
                version: *version,
                conflict: true,
            }),
            _ => None,
        }
    }

    /// What a replay of the request answers.
    pub fn replay(&self) -> Result<Applied, StoreError> {
        let value: Value = serde_json::from_str(&self.text)
            .map_err(|e| StoreError::Internal(format!("corrupt request record: {e}")))?;
        if self.conflict {
            return Err(StoreError::Conflict {
                current: value,
                version: self.version,
            });
        }
        Ok(Applied {
            value,
            replayed: true,
            version: self.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Object {
        value.as_object().unwrap().clone()
    }

    fn patch(item: Value) -> WriteOp {
        WriteOp::Patch {
            collection: "/c".into(),
            id: "1".into(),
            item: object(item),
        }
    }

    fn stored(doc: Value, version: i64) -> Option<Current> {
        Some(Current {
            doc: object(doc),
            version,
        })
    }

    #[test]
    fn a_create_is_version_one_with_its_id() {
        let op = WriteOp::Create {
            collection: "/c".into(),
            item: object(json!({"t": "a", "id": 99})),
        };
        let d = decide(op, None, None, Some(7), 1000).unwrap();
        assert_eq!(d.value, json!({"t": "a", "id": 7}));
        assert_eq!((d.version, d.effect), (1, Effect::Put(d.text.clone())));
    }

    #[test]
    fn a_patch_merges_all_but_the_id_and_counts_one_more() {
        let d = decide(
            patch(json!({"n": 2, "id": 5})),
            None,
            stored(json!({"id": 1, "n": 1, "k": true}), 3),
            None,
            1000,
        )
        .unwrap();
        assert_eq!(d.value, json!({"id": 1, "n": 2, "k": true}));
        assert_eq!(d.version, 4);
    }

    #[test]
    fn a_stale_condition_is_a_conflict_with_what_is_stored() {
        let err = decide(
            patch(json!({"n": 2})),
            Some(2),
            stored(json!({"n": 9}), 3),
            None,
            1000,
        );
        assert!(
            matches!(err, Err(StoreError::Conflict { ref current, version: 3 })
            if *current == json!({"n": 9}))
        );
        // A model deleted meanwhile: a conflict naming no document, not a 404.
        let gone = decide(patch(json!({"n": 2})), Some(3), None, None, 1000);
        assert!(matches!(
            gone,
            Err(StoreError::Conflict {
                current: Value::Null,
                version: 0
            })
        ));
        // The matching condition applies.
        let ok = decide(
            patch(json!({"n": 2})),
            Some(3),
            stored(json!({"n": 9}), 3),
            None,
            1000,
        );
        assert_eq!(ok.unwrap().version, 4);
    }

    #[test]
    fn update_upserts_and_delete_needs_the_model() {
        let put = WriteOp::Update {
            collection: "/c".into(),
            id: "x".into(),
            item: object(json!({"id": "x"})),
        };
        assert_eq!(
            decide(put.clone(), Some(0), None, None, 1000)
                .unwrap()
                .version,
            1
        );
        assert!(matches!(
            decide(put, Some(0), stored(json!({}), 1), None, 1000),
            Err(StoreError::Conflict { version: 1, .. })
        ));
        let delete = WriteOp::Delete {
            collection: "/c".into(),
            id: "x".into(),
        };
        assert!(matches!(
            decide(delete.clone(), None, None, None, 1000),
            Err(StoreError::NotFound)
        ));
        let d = decide(delete, None, stored(json!({}), 2), None, 1000).unwrap();
        assert_eq!(
            (d.effect, d.text.as_str(), d.version),
            (Effect::Remove, "{}", 3)
        );
    }

    #[test]
    fn documents_over_the_bound_are_refused() {
        let big = patch(json!({"s": "x".repeat(100)}));
        assert!(matches!(
            decide(big, None, stored(json!({}), 1), None, 50),
            Err(StoreError::TooLarge(50))
        ));
    }

    #[test]
    fn records_replay_what_was_answered_conflicts_included() {
        let d = decide(
            patch(json!({"n": 1})),
            None,
            stored(json!({}), 1),
            None,
            1000,
        )
        .unwrap();
        let replay = Recorded::applied(&d).replay().unwrap();
        assert_eq!(
            (replay.value, replay.version, replay.replayed),
            (json!({"n": 1}), 2, true)
        );
        let conflict = StoreError::Conflict {
            current: json!({"n": 5}),
            version: 4,
        };
        let again = Recorded::refused(&conflict).unwrap().replay();
        assert!(
            matches!(again, Err(StoreError::Conflict { ref current, version: 4 })
            if *current == json!({"n": 5}))
        );
        assert!(Recorded::refused(&StoreError::NotFound).is_none());
    }
}
