//! Certificate templates.

use easgate_pki::template::{SanTemplate, TemplateSpec};
use easgate_pki::KeyType;
use easgate_store::{NewTemplate, Template};

use crate::error::{OpsError, Result};
use crate::names::check_name;
use crate::Easgate;

pub const DEFAULT_VALIDITY_DAYS: u32 = 365;
pub const DEFAULT_RENEW_BEFORE_DAYS: u32 = 30;

/// What `template create` asks for.
#[derive(Clone, Debug)]
pub struct TemplateRequest {
    pub name: String,
    pub ca: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub key_type: KeyType,
    pub validity_days: Option<u32>,
    pub renew_before_days: Option<u32>,
    pub is_default: bool,
}

/// `template set`: what to change (`None`: keep).
pub struct TemplateChange {
    pub name: String,
    pub subject: Option<String>,
    pub sans: Option<Vec<String>>,
    pub key_type: Option<KeyType>,
    pub validity_days: Option<u32>,
    pub renew_before_days: Option<u32>,
}

/// The validated spec of a stored template.
pub fn spec_of(t: &Template) -> Result<TemplateSpec> {
    let sans = t
        .sans
        .iter()
        .map(|s| s.parse::<SanTemplate>())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(TemplateSpec::new(&t.subject, sans)?)
}

impl Easgate {
    pub async fn create_template(&self, req: TemplateRequest) -> Result<Template> {
        check_name("template", &req.name)?;
        let sans = req
            .sans
            .iter()
            .map(|s| s.parse::<SanTemplate>())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let spec = TemplateSpec::new(&req.subject, sans)?;
        let validity = req.validity_days.unwrap_or(DEFAULT_VALIDITY_DAYS);
        if validity == 0 || validity > 3650 {
            return Err(OpsError::Invalid(format!(
                "--validity-days {validity}: a device certificate's validity must be 1 to 3650 days"
            )));
        }
        let renew = req
            .renew_before_days
            .unwrap_or(DEFAULT_RENEW_BEFORE_DAYS.min(validity / 2));
        if renew >= validity {
            return Err(OpsError::Invalid(format!(
                "--renew-before-days {renew} must be less than --validity-days {validity}"
            )));
        }
        self.get_ca(&req.ca).await?;
        if self.store.get_template(&req.name).await?.is_some() {
            return Err(OpsError::AlreadyExists {
                kind: "template",
                key: req.name,
            });
        }
        Ok(self
            .store
            .insert_template(
                &self.ctx(),
                NewTemplate {
                    name: req.name,
                    ca: req.ca,
                    subject: spec.subject,
                    sans: spec.sans.iter().map(|s| s.to_string()).collect(),
                    key_type: req.key_type.as_str().to_string(),
                    validity_days: validity,
                    renew_before_days: renew,
                    is_default: req.is_default,
                },
            )
            .await?)
    }

    /// `template set`: change what is given, validated as at creation. Certificates already
    /// issued keep what they were issued with; renewals and new devices get the new form.
    pub async fn update_template(&self, change: TemplateChange) -> Result<Template> {
        let current = self.get_template(&change.name).await?;
        let subject = change.subject.unwrap_or(current.subject);
        let sans = change.sans.unwrap_or(current.sans);
        let parsed = sans
            .iter()
            .map(|s| s.parse::<SanTemplate>())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let spec = TemplateSpec::new(&subject, parsed)?;
        let validity = change.validity_days.unwrap_or(current.validity_days);
        if validity == 0 || validity > 3650 {
            return Err(OpsError::Invalid(format!(
                "--validity-days {validity}: a device certificate's validity must be 1 to 3650 days"
            )));
        }
        let renew = change
            .renew_before_days
            .unwrap_or(current.renew_before_days);
        if renew >= validity {
            return Err(OpsError::Invalid(format!(
                "--renew-before-days {renew} must be less than --validity-days {validity}"
            )));
        }
        let key_type = match change.key_type {
            Some(k) => k.as_str().to_string(),
            None => current.key_type,
        };
        Ok(self
            .store
            .update_template(
                &self.ctx(),
                NewTemplate {
                    name: current.name,
                    ca: current.ca,
                    subject: spec.subject,
                    sans: spec.sans.iter().map(|s| s.to_string()).collect(),
                    key_type,
                    validity_days: validity,
                    renew_before_days: renew,
                    is_default: current.is_default,
                },
            )
            .await?)
    }

    /// `template default`: the template devices get without `--template`.
    pub async fn set_default_template(&self, name: &str) -> Result<Template> {
        self.store
            .set_default_template(&self.ctx(), name)
            .await
            .map_err(|e| OpsError::from(e).hint_if_not_found("see `easgate template list`"))
    }

    /// `template remove`: only a template nothing refers to.
    pub async fn remove_template(&self, name: &str) -> Result<()> {
        self.store
            .remove_template(&self.ctx(), name)
            .await
            .map_err(|e| OpsError::from(e).hint_if_not_found("see `easgate template list`"))
    }

    pub async fn list_templates(&self) -> Result<Vec<Template>> {
        Ok(self.store.list_templates().await?)
    }

    pub async fn get_template(&self, name: &str) -> Result<Template> {
        self.store
            .get_template(name)
            .await?
            .ok_or_else(|| OpsError::not_found("template", name, "see `easgate template list`"))
    }

    /// The template a device gets without `--template`: the only one, or the default one.
    pub async fn default_template(&self) -> Result<Template> {
        let all = self.store.list_templates().await?;
        match all.as_slice() {
            [] => Err(OpsError::Invalid(
                "no certificate template exists yet: create one with `easgate template create`".into(),
            )),
            [only] => Ok(only.clone()),
            many => many.iter().find(|t| t.is_default).cloned().ok_or_else(|| {
                OpsError::Invalid(format!(
                    "{} templates exist and none is the default: pass --template, or create one with --default",
                    many.len()
                ))
            }),
        }
    }
}
