//! Typed reading and writing of Automerge document fields.
//!
//! Reading is strict: a field of the wrong type is a [`Rejection`] naming the field, so a phone
//! that writes `"lat": "north"` is told exactly what is wrong. A field that two phones set
//! concurrently has more than one value; the reader returns Automerge's winner and records a
//! [`Conflict`] so people can see and settle it instead of one edit silently disappearing.
//!
//! Writing is minimal: a value is only written when it differs from what the document holds
//! (or when the field is in conflict, to settle it), so an edit produces only the operations it
//! needs and concurrent edits of different fields never collide.

use crate::error::Rejection;
use crate::ids::UserId;
use crate::record::Conflict;
use automerge::{
    AutomergeError, ObjId, ObjType, ReadDoc, ScalarValue, Value, hydrate, transaction::Transactable,
};
use std::cell::RefCell;

/// One step from an object to a child: a map key or a list index.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// A map or list of a hydrated document, with the way to it from the object the hydration
/// started at (needed only to look up the values of a conflict).
#[derive(Clone, Debug)]
pub struct Obj<'v> {
    node: &'v hydrate::Value,
    base: ObjId,
    steps: Vec<Step>,
}

impl<'v> Obj<'v> {
    fn child(&self, node: &'v hydrate::Value, step: Step) -> Obj<'v> {
        let mut steps = self.steps.clone();
        steps.push(step);
        Obj {
            node,
            base: self.base.clone(),
            steps,
        }
    }
}

/// Reads typed fields from one document, collecting conflicts as it goes.
///
/// Values come from one hydration of the document (a plain tree, cheap to walk); only where
/// Automerge flags a field as conflicted does the reader go back to the document for all of its
/// values.
pub struct Reader<'a, D: ReadDoc> {
    doc: &'a D,
    conflicts: RefCell<Vec<Conflict>>,
}

fn wrong_type(path: &str, expected: &str) -> Rejection {
    Rejection::new(
        "invalid_field_type",
        format!("Field '{path}' must be {expected}."),
    )
}

fn scalar_text(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Str(s) => s.to_string(),
        ScalarValue::F64(f) => f.to_string(),
        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => i.to_string(),
        ScalarValue::Uint(u) => u.to_string(),
        ScalarValue::Boolean(b) => b.to_string(),
        ScalarValue::Null => "null".into(),
        other => format!("{other:?}"),
    }
}

impl<'a, D: ReadDoc> Reader<'a, D> {
    pub fn new(doc: &'a D) -> Self {
        Self {
            doc,
            conflicts: RefCell::new(Vec::new()),
        }
    }

    /// The plain tree of `obj` (and everything under it).
    pub fn hydrate(&self, obj: &ObjId) -> Result<hydrate::Value, Rejection> {
        self.doc.hydrate(obj, None).map_err(|e| {
            Rejection::new(
                "invalid_document",
                format!("The document cannot be read: {e}."),
            )
        })
    }

    /// A handle on a tree made by [`Reader::hydrate`] from `base`.
    pub fn obj<'v>(&self, base: &ObjId, node: &'v hydrate::Value) -> Obj<'v> {
        Obj {
            node,
            base: base.clone(),
            steps: Vec::new(),
        }
    }

    /// The conflicts found so far.
    pub fn into_conflicts(self) -> Vec<Conflict> {
        self.conflicts.into_inner()
    }

    /// The value of `key` in the map `obj`, noting a conflict if Automerge flags one.
    fn get<'v>(
        &self,
        obj: &Obj<'v>,
        key: &str,
        path: &str,
    ) -> Result<Option<&'v hydrate::Value>, Rejection> {
        let hydrate::Value::Map(map) = obj.node else {
            return Err(Rejection::new(
                "invalid_document",
                format!("Field '{path}' is not inside an object."),
            ));
        };
        let Some((_, entry)) = map.iter().find(|(k, _)| k.as_str() == key) else {
            return Ok(None);
        };
        if entry.conflict {
            self.note_conflict(obj, key, path);
        }
        Ok(Some(&entry.value))
    }

    fn note_conflict(&self, obj: &Obj<'_>, key: &str, path: &str) {
        let mut id = obj.base.clone();
        for step in &obj.steps {
            let next = match step {
                Step::Key(k) => self.doc.get(&id, k.as_str()),
                Step::Index(i) => self.doc.get(&id, *i),
            };
            match next {
                Ok(Some((Value::Object(_), child))) => id = child,
                _ => return,
            }
        }
        let Ok(all) = self.doc.get_all(&id, key) else {
            return;
        };
        if all.len() > 1 {
            self.conflicts.borrow_mut().push(Conflict {
                field: path.to_owned(),
                values: all
                    .iter()
                    .map(|(v, _)| match v {
                        Value::Scalar(s) => scalar_text(s),
                        Value::Object(t) => format!("<{t}>"),
                    })
                    .collect(),
            });
        }
    }

    pub fn opt_str(
        &self,
        obj: &Obj<'_>,
        key: &str,
        path: &str,
    ) -> Result<Option<String>, Rejection> {
        match self.get(obj, key, path)? {
            None | Some(hydrate::Value::Scalar(ScalarValue::Null)) => Ok(None),
            Some(hydrate::Value::Scalar(ScalarValue::Str(s))) => Ok(Some(s.to_string())),
            Some(hydrate::Value::Text(t)) => Ok(Some(t.to_string())),
            Some(_) => Err(wrong_type(path, "a string")),
        }
    }

    pub fn req_str(&self, obj: &Obj<'_>, key: &str, path: &str) -> Result<String, Rejection> {
        self.opt_str(obj, key, path)?
            .ok_or_else(|| Rejection::new("missing_field", format!("Field '{path}' is required.")))
    }

    pub fn opt_f64(&self, obj: &Obj<'_>, key: &str, path: &str) -> Result<Option<f64>, Rejection> {
        match self.get(obj, key, path)? {
            None | Some(hydrate::Value::Scalar(ScalarValue::Null)) => Ok(None),
            Some(hydrate::Value::Scalar(ScalarValue::F64(f))) => Ok(Some(*f)),
            Some(hydrate::Value::Scalar(ScalarValue::Int(i))) => Ok(Some(*i as f64)),
            Some(hydrate::Value::Scalar(ScalarValue::Uint(u))) => Ok(Some(*u as f64)),
            Some(_) => Err(wrong_type(path, "a number")),
        }
    }

    pub fn opt_u64(&self, obj: &Obj<'_>, key: &str, path: &str) -> Result<Option<u64>, Rejection> {
        match self.get(obj, key, path)? {
            None => Ok(None),
            Some(hydrate::Value::Scalar(ScalarValue::Uint(u))) => Ok(Some(*u)),
            Some(hydrate::Value::Scalar(ScalarValue::Int(i))) if *i >= 0 => Ok(Some(*i as u64)),
            Some(_) => Err(wrong_type(path, "a whole number")),
        }
    }

    pub fn opt_i64(&self, obj: &Obj<'_>, key: &str, path: &str) -> Result<Option<i64>, Rejection> {
        match self.get(obj, key, path)? {
            None | Some(hydrate::Value::Scalar(ScalarValue::Null)) => Ok(None),
            Some(hydrate::Value::Scalar(ScalarValue::Int(i))) => Ok(Some(*i)),
            Some(hydrate::Value::Scalar(ScalarValue::Uint(u))) if *u <= i64::MAX as u64 => {
                Ok(Some(*u as i64))
            }
            Some(hydrate::Value::Scalar(ScalarValue::Timestamp(t))) => Ok(Some(*t)),
            Some(_) => Err(wrong_type(path, "a whole number")),
        }
    }

    pub fn opt_bool(
        &self,
        obj: &Obj<'_>,
        key: &str,
        path: &str,
    ) -> Result<Option<bool>, Rejection> {
        match self.get(obj, key, path)? {
            None | Some(hydrate::Value::Scalar(ScalarValue::Null)) => Ok(None),
            Some(hydrate::Value::Scalar(ScalarValue::Boolean(b))) => Ok(Some(*b)),
            Some(_) => Err(wrong_type(path, "true or false")),
        }
    }

    /// The object stored at `key`, which must be of type `ty` if present.
    pub fn opt_obj<'v>(
        &self,
        obj: &Obj<'v>,
        key: &str,
        path: &str,
        ty: ObjType,
    ) -> Result<Option<Obj<'v>>, Rejection> {
        match (self.get(obj, key, path)?, ty) {
            (None, _) => Ok(None),
            (Some(v @ hydrate::Value::Map(_)), ObjType::Map)
            | (Some(v @ hydrate::Value::List(_)), ObjType::List) => {
                Ok(Some(obj.child(v, Step::Key(key.to_owned()))))
            }
            (Some(_), _) => Err(wrong_type(
                path,
                if ty == ObjType::List {
                    "a list"
                } else {
                    "an object"
                },
            )),
        }
    }

    /// The objects of the id-keyed map at `key` of `obj` (none if there is no such map), by
    /// key, each with its key and the path its fields are named under (`path.key`).
    pub fn items<'v>(
        &self,
        obj: &Obj<'v>,
        key: &str,
        path: &str,
    ) -> Result<Vec<(String, String, Obj<'v>)>, Rejection> {
        let Some(map) = self.opt_obj(obj, key, path, ObjType::Map)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for k in self.keys(&map) {
            let item_path = format!("{path}.{k}");
            if let Some(o) = self.opt_obj(&map, &k, &item_path, ObjType::Map)? {
                out.push((k, item_path, o));
            }
        }
        Ok(out)
    }

    /// A required whole number.
    pub fn req_i64(&self, obj: &Obj<'_>, key: &str, path: &str) -> Result<i64, Rejection> {
        self.opt_i64(obj, key, path)?
            .ok_or_else(|| Rejection::new("missing_field", format!("Field '{path}' is required.")))
    }

    /// A required user id.
    pub fn req_user(&self, obj: &Obj<'_>, key: &str, path: &str) -> Result<UserId, Rejection> {
        self.req_str(obj, key, path)?.parse().map_err(|_| {
            Rejection::new(
                "invalid_id",
                format!("Field '{path}' must be a user id (UUID)."),
            )
        })
    }

    /// Keys of a map object, sorted.
    pub fn keys(&self, obj: &Obj<'_>) -> Vec<String> {
        let mut k: Vec<String> = match obj.node {
            hydrate::Value::Map(m) => m.iter().map(|(k, _)| k.clone()).collect(),
            _ => Vec::new(),
        };
        k.sort();
        k
    }

    /// The map objects of a list, in order.
    pub fn list_maps<'v>(&self, list: &Obj<'v>, path: &str) -> Result<Vec<Obj<'v>>, Rejection> {
        let hydrate::Value::List(items) = list.node else {
            return Err(wrong_type(path, "a list"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match &item.value {
                v @ hydrate::Value::Map(_) => Ok(list.child(v, Step::Index(i))),
                _ => Err(wrong_type(&format!("{path}[{i}]"), "an object")),
            })
            .collect()
    }
}

/// Whether `key` in `obj` already holds exactly `want` with no concurrent alternatives.
fn holds<T: ReadDoc>(tx: &T, obj: &ObjId, key: &str, want: &ScalarValue) -> bool {
    match tx.get_all(obj, key) {
        Ok(all) if all.len() == 1 => matches!(&all[0].0, Value::Scalar(s) if s.as_ref() == want),
        _ => false,
    }
}

/// Sets a scalar if it differs (or is in conflict).
pub fn put<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: impl Into<ScalarValue>,
) -> Result<(), AutomergeError> {
    let value = value.into();
    if !holds(tx, obj, key, &value) {
        tx.put(obj, key, value)?;
    }
    Ok(())
}

/// Sets or removes an optional scalar.
pub fn put_opt<T: Transactable, V: Into<ScalarValue>>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: Option<V>,
) -> Result<(), AutomergeError> {
    match value {
        Some(v) => put(tx, obj, key, v),
        None => {
            if tx.get(obj, key)?.is_some() {
                tx.delete(obj, key)?;
            }
            Ok(())
        }
    }
}

/// The map at `key`, created if absent (or if something else is there).
pub fn ensure_map<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
) -> Result<ObjId, AutomergeError> {
    match tx.get(obj, key)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(id),
        _ => tx.put_object(obj, key, ObjType::Map),
    }
}

/// Collaborative text at `key`: edits are diffed into character splices, so concurrent edits
/// by two phones merge text-wise instead of one overwriting the other.
pub fn put_text<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: &str,
) -> Result<(), AutomergeError> {
    let id = match tx.get(obj, key)? {
        Some((Value::Object(ObjType::Text), id)) => id,
        _ => tx.put_object(obj, key, ObjType::Text)?,
    };
    if tx.text(&id)? != value {
        tx.update_text(&id, value)?;
    }
    Ok(())
}

/// Removes every key of the map `obj` not in `keep`.
pub fn retain_keys<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    keep: &[String],
) -> Result<(), AutomergeError> {
    let existing: Vec<String> = tx.keys(obj).collect();
    for k in existing {
        if !keep.contains(&k) {
            tx.delete(obj, k.as_str())?;
        }
    }
    Ok(())
}
