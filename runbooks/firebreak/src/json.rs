//! A small reader over `serde_json::Value` that knows the JSON path of every value it
//! hands out, so each error names the exact field that was wrong.

use serde_json::Value;

use crate::error::InputError;

/// Longest free-text field kept (titles, descriptions); longer text is cut, not refused,
/// because it is only shown, never acted on.
pub const MAX_TEXT: usize = 2048;

#[derive(Clone, Copy)]
pub struct Node<'a> {
    pub value: &'a Value,
    path: &'a str,
    /// Keys are looked up with their first letter upper-cased: the same document as the
    /// SDK and CLI print it (`Resource.InstanceDetails`), read by the camelCase parser.
    pascal: bool,
}

/// Owned path + borrowed value: the path of a child is built when the child is made.
pub struct Child<'a> {
    pub value: &'a Value,
    pub path: String,
    pascal: bool,
}

impl<'a> Child<'a> {
    /// This child and everything under it read with PascalCase keys.
    pub fn pascal(self) -> Self {
        Child {
            pascal: true,
            ..self
        }
    }

    pub fn node(&self) -> Node<'_> {
        Node {
            value: self.value,
            path: &self.path,
            pascal: self.pascal,
        }
    }
}

/// `instanceDetails` → `InstanceDetails`.
fn capitalised(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value, path: &'a str) -> Self {
        Node {
            value,
            path,
            pascal: false,
        }
    }

    /// This node and everything under it read with PascalCase keys.
    pub fn pascal(self) -> Self {
        Node {
            pascal: true,
            ..self
        }
    }

    /// The key as the document spells it.
    fn spelt<'k>(&self, key: &'k str) -> std::borrow::Cow<'k, str> {
        if self.pascal {
            std::borrow::Cow::Owned(capitalised(key))
        } else {
            std::borrow::Cow::Borrowed(key)
        }
    }

    pub fn path(&self) -> &str {
        self.path
    }

    pub fn child_path(&self, key: &str) -> String {
        join(self.path, &self.spelt(key))
    }

    fn wrong(&self, expected: &'static str) -> InputError {
        InputError::WrongType {
            path: self.path.to_owned(),
            expected,
            found: kind(self.value),
        }
    }

    pub fn invalid(&self, key: &str, reason: impl Into<String>) -> InputError {
        InputError::InvalidValue {
            path: self.child_path(key),
            reason: reason.into(),
        }
    }

    pub fn expect_object(&self) -> Result<(), InputError> {
        if self.value.is_object() {
            Ok(())
        } else {
            Err(self.wrong("an object"))
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.value
            .get(self.spelt(key).as_ref())
            .is_some_and(|v| !v.is_null())
    }

    /// The field, or `None` when absent or null.
    pub fn get(&self, key: &str) -> Option<Child<'a>> {
        let key = self.spelt(key);
        match self.value.get(key.as_ref()) {
            None | Some(Value::Null) => None,
            Some(value) => Some(Child {
                value,
                path: join(self.path, &key),
                pascal: self.pascal,
            }),
        }
    }

    pub fn req(&self, key: &str) -> Result<Child<'a>, InputError> {
        self.get(key).ok_or_else(|| InputError::MissingField {
            path: self.child_path(key),
        })
    }

    /// The field as an object, `None` when absent; an error when it is not an object.
    pub fn object(&self, key: &str) -> Result<Option<Child<'a>>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(c) if c.value.is_object() => Ok(Some(c)),
            Some(c) => Err(c.node().wrong("an object")),
        }
    }

    /// This node's own items, when it is an array.
    pub fn items(&self) -> Result<Vec<Child<'a>>, InputError> {
        match self.value {
            Value::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, value)| Child {
                    value,
                    path: format!("{}[{i}]", self.path),
                    pascal: self.pascal,
                })
                .collect()),
            _ => Err(self.wrong("an array")),
        }
    }

    pub fn array(&self, key: &str) -> Result<Vec<Child<'a>>, InputError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(c) => match c.value {
                Value::Array(items) => Ok(items
                    .iter()
                    .enumerate()
                    .map(|(i, value)| Child {
                        value,
                        path: format!("{}[{i}]", c.path),
                        pascal: self.pascal,
                    })
                    .collect()),
                _ => Err(c.node().wrong("an array")),
            },
        }
    }

    pub fn str(&self, key: &str) -> Result<Option<&'a str>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(Child {
                value: Value::String(s),
                ..
            }) => Ok(Some(s.as_str())),
            Some(c) => Err(c.node().wrong("a string")),
        }
    }

    pub fn req_str(&self, key: &str) -> Result<&'a str, InputError> {
        self.str(key)?.ok_or_else(|| InputError::MissingField {
            path: self.child_path(key),
        })
    }

    /// Free text, cut to `MAX_TEXT` characters.
    pub fn text(&self, key: &str) -> Result<Option<String>, InputError> {
        Ok(self
            .str(key)?
            .map(|s| s.chars().take(MAX_TEXT).collect::<String>()))
    }

    pub fn number(&self, key: &str) -> Result<Option<f64>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(Child {
                value: Value::Number(n),
                path,
                ..
            }) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or(InputError::InvalidValue {
                    path,
                    reason: "number out of range".into(),
                }),
            Some(c) => Err(c.node().wrong("a number")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(Child {
                value: Value::Bool(b),
                ..
            }) => Ok(Some(*b)),
            Some(c) => Err(c.node().wrong("a boolean")),
        }
    }

    /// A string field run through a validator; the validator's message becomes the error.
    pub fn parsed<T>(
        &self,
        key: &str,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, InputError> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) => check(s)
                .map(Some)
                .map_err(|reason| self.invalid(key, reason)),
        }
    }

    pub fn req_parsed<T>(
        &self,
        key: &str,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, InputError> {
        let s = self.req_str(key)?;
        check(s).map_err(|reason| self.invalid(key, reason))
    }
}
