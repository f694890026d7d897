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
