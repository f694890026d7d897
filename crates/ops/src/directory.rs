//! Users and groups.

use easgate_pki::template::looks_like_address;
use easgate_store::{Group, NewUser, Revocation, User, UserChange};

use crate::error::{OpsError, Result};
use crate::names::check_name;
use crate::Easgate;

impl Easgate {
    pub async fn add_user(
        &self,
        upn: &str,
        email: &str,
        display_name: Option<&str>,
        groups: &[String],
    ) -> Result<User> {
        if !looks_like_address(upn) {
            return Err(OpsError::Invalid(format!(
                "invalid UPN `{upn}`: expected user@domain, e.g. alice@corp.example.com"
            )));
        }
        if !looks_like_address(email) || !email.is_ascii() {
            return Err(OpsError::Invalid(format!(
                "invalid email address `{email}`: expected user@domain in ASCII"
            )));
        }
        for group in groups {
            if self
                .store
                .list_groups()
                .await?
                .iter()
                .all(|g| !g.name.eq_ignore_ascii_case(group))
            {
                return Err(OpsError::not_found(
                    "group",
                    group,
                    "create it first with `easgate group add`",
                ));
            }
        }
        Ok(self
            .store
            .insert_user(
                &self.ctx(),
                NewUser {
                    upn: upn.to_string(),
                    email: email.to_string(),
                    display_name: display_name
                        .map(str::to_string)
                        .filter(|s| !s.trim().is_empty()),
                    groups: groups.to_vec(),
                },
            )
            .await?)
    }

    /// `user set`: change what is given. A new email is checked like one given to `user add`;
    /// groups must exist. Certificates already issued keep the names they were issued with
    /// (re-enroll a device to give it a certificate with the new address).
    pub async fn update_user(&self, upn: &str, change: UserChange) -> Result<User> {
        self.get_user(upn).await?;
        if let Some(email) = &change.email {
            if !looks_like_address(email) || !email.is_ascii() {
                return Err(OpsError::Invalid(format!(
                    "invalid email address `{email}`: expected user@domain in ASCII"
                )));
            }
        }
        if change.email.is_none()
            && change.display_name.is_none()
            && change.add_groups.is_empty()
            && change.remove_groups.is_empty()
        {
            return Err(OpsError::Invalid(
                "nothing to change: give --email, --name, --add-group or --remove-group".into(),
            ));
        }
        let groups = self.store.list_groups().await?;
        for group in change.add_groups.iter().chain(&change.remove_groups) {
            if !groups.iter().any(|g| g.name.eq_ignore_ascii_case(group)) {
                return Err(OpsError::not_found(
                    "group",
                    group,
                    "create it first with `easgate group add`",
                ));
            }
        }
        Ok(self.store.update_user(&self.ctx(), upn, change).await?)
    }

    /// `user remove`: only a user who never had a device (a typo, someone who never enrolled).
    pub async fn remove_user(&self, upn: &str) -> Result<()> {
        self.store
            .remove_user(&self.ctx(), upn)
            .await
            .map_err(|e| OpsError::from(e).hint_if_not_found("see `easgate user list`"))
    }

    /// `group remove`: memberships go with it; refused while a rule or profile names it.
    pub async fn remove_group(&self, name: &str) -> Result<()> {
        self.store
            .remove_group(&self.ctx(), name)
            .await
            .map_err(|e| OpsError::from(e).hint_if_not_found("see `easgate group list`"))
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        Ok(self.store.list_users().await?)
    }

    pub async fn get_user(&self, upn: &str) -> Result<User> {
        self.store
            .get_user(upn)
            .await?
            .ok_or_else(|| OpsError::not_found("user", upn, "see `easgate user list`"))
    }

    /// Disable a user and revoke every valid certificate of their devices
    /// (reason affiliationChanged). Returns the revoked serials.
    pub async fn disable_user(&self, upn: &str) -> Result<(User, Vec<String>)> {
        self.get_user(upn).await?;
        let ctx = self.ctx();
        let revoke = Revocation {
            reason: "affiliationChanged".into(),
            at: ctx.now,
        };
        Ok(self
            .store
            .set_user_disabled(&ctx, upn, true, Some(revoke))
            .await?)
    }

    /// Enable a user again. Revoked certificates stay revoked: devices enroll anew.
    pub async fn enable_user(&self, upn: &str) -> Result<User> {
        self.get_user(upn).await?;
        Ok(self
            .store
            .set_user_disabled(&self.ctx(), upn, false, None)
            .await?
            .0)
    }

    pub async fn add_group(&self, name: &str) -> Result<Group> {
        check_name("group", name)?;
        Ok(self.store.insert_group(&self.ctx(), name).await?)
    }

    pub async fn list_groups(&self) -> Result<Vec<Group>> {
        Ok(self.store.list_groups().await?)
    }
}
