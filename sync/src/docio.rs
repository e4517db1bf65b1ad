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
use crate::record::Conflict;
use automerge::{
    AutomergeError, ObjId, ObjType, ReadDoc, ScalarValue, Value, transaction::Transactable,
};

/// Reads typed fields from one document, collecting conflicts as it goes.
pub struct Reader<'a, D: ReadDoc> {
    doc: &'a D,
    pub conflicts: Vec<Conflict>,
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
            conflicts: Vec::new(),
        }
    }

    /// The winning value of `key` in `obj`, noting a conflict if there are several.
    fn get(&mut self, obj: &ObjId, key: &str, path: &str) -> Result<Option<Value<'a>>, Rejection> {
        let all = self.doc.get_all(obj, key).map_err(|e| {
            Rejection::new(
                "invalid_document",
                format!("Cannot read field '{path}': {e}."),
            )
        })?;
        if all.len() > 1 {
            self.conflicts.push(Conflict {
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
        // Automerge's winner is the last of get_all.
        Ok(all.into_iter().last().map(|(v, _)| v))
    }

    pub fn opt_str(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Option<String>, Rejection> {
        match self.get(obj, key, path)? {
            None | Some(Value::Scalar(std::borrow::Cow::Borrowed(ScalarValue::Null))) => Ok(None),
            Some(Value::Scalar(s)) => match s.as_ref() {
                ScalarValue::Str(s) => Ok(Some(s.to_string())),
                ScalarValue::Null => Ok(None),
                _ => Err(wrong_type(path, "a string")),
            },
            Some(Value::Object(ObjType::Text)) => {
                let id = self.obj_id(obj, key, path)?;
                self.doc.text(&id).map(Some).map_err(|e| {
                    Rejection::new(
                        "invalid_document",
                        format!("Cannot read text '{path}': {e}."),
                    )
                })
            }
            Some(Value::Object(_)) => Err(wrong_type(path, "a string")),
        }
    }

    pub fn req_str(&mut self, obj: &ObjId, key: &str, path: &str) -> Result<String, Rejection> {
        self.opt_str(obj, key, path)?
            .ok_or_else(|| Rejection::new("missing_field", format!("Field '{path}' is required.")))
    }

    pub fn opt_f64(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Option<f64>, Rejection> {
        match self.get(obj, key, path)? {
            None => Ok(None),
            Some(Value::Scalar(s)) => match s.as_ref() {
                ScalarValue::F64(f) => Ok(Some(*f)),
                ScalarValue::Int(i) => Ok(Some(*i as f64)),
                ScalarValue::Uint(u) => Ok(Some(*u as f64)),
                ScalarValue::Null => Ok(None),
                _ => Err(wrong_type(path, "a number")),
            },
            Some(Value::Object(_)) => Err(wrong_type(path, "a number")),
        }
    }

    pub fn opt_u64(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Option<u64>, Rejection> {
        match self.get(obj, key, path)? {
            None => Ok(None),
            Some(Value::Scalar(s)) => match s.as_ref() {
                ScalarValue::Uint(u) => Ok(Some(*u)),
                ScalarValue::Int(i) if *i >= 0 => Ok(Some(*i as u64)),
                _ => Err(wrong_type(path, "a whole number")),
            },
            Some(Value::Object(_)) => Err(wrong_type(path, "a whole number")),
        }
    }

    /// The object stored at `key`, which must be of type `ty` if present.
    pub fn opt_obj(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
        ty: ObjType,
    ) -> Result<Option<ObjId>, Rejection> {
        match self.get(obj, key, path)? {
            None => Ok(None),
            Some(Value::Object(t)) if t == ty => self.obj_id(obj, key, path).map(Some),
            Some(_) => Err(wrong_type(
                path,
                if ty == ObjType::List {
                    "a list"
                } else {
                    "an object"
                },
            )),
        }
    }

    fn obj_id(&self, obj: &ObjId, key: &str, path: &str) -> Result<ObjId, Rejection> {
        match self.doc.get(obj, key) {
            Ok(Some((Value::Object(_), id))) => Ok(id),
            _ => Err(wrong_type(path, "an object")),
        }
    }

    /// Keys of a map object, sorted.
    pub fn keys(&self, obj: &ObjId) -> Vec<String> {
        let mut k: Vec<String> = self.doc.keys(obj).collect();
        k.sort();
        k
    }

    /// The map objects of a list, in order.
    pub fn list_maps(&mut self, list: &ObjId, path: &str) -> Result<Vec<ObjId>, Rejection> {
        let len = self.doc.length(list);
        let mut out = Vec::with_capacity(len);
        for i in 0..len {
            match self.doc.get(list, i) {
                Ok(Some((Value::Object(ObjType::Map), id))) => out.push(id),
                _ => return Err(wrong_type(&format!("{path}[{i}]"), "an object")),
            }
        }
        Ok(out)
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
