//! The HTML templates, embedded at build time and compiled once at start-up.

use tera::{Context, Tera};

/// Template name and source of every page. Names ending in `.html` are
/// auto-escaped.
const SOURCES: [(&str, &str); 3] = [
    ("base.html", include_str!("../templates/base.html")),
    ("page.html", include_str!("../templates/page.html")),
    ("error.html", include_str!("../templates/error.html")),
];

/// The compiled templates.
pub struct Templates {
    tera: Tera,
}

impl Templates {
    /// Compiles the embedded templates.
    pub fn new() -> Result<Self, tera::Error> {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html"]);
        tera.add_raw_templates(SOURCES)?;
        Ok(Self { tera })
    }

    /// Renders the template `name` with `context`.
    pub fn render(&self, name: &str, context: &Context) -> Result<String, tera::Error> {
        self.tera.render(name, context)
    }
}
