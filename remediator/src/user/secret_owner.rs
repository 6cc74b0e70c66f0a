//! Before a rotation, the secret named after the user must be the user's: a name outlives its
//! user, and a new user of an old name must not inherit the old one's secret, its policy and its
//! `AWSPREVIOUS` key (`keyguard_aws::secret_owner`). A secret of another user's id is never
//! reused; one from before the id tag is adopted only when it is younger than the user.

use keyguard_aws::iam;
use keyguard_aws::secret_owner::{adopt, owner, Owner};
use keyguard_aws::secrets::secret_name;

use crate::error::Result;
use crate::user::{Ctx, UserRun};

impl Ctx<'_> {
    /// `Ok(None)` when the user's secret may hold its new key (it is the user's, or there is
    /// none yet), `Ok(Some(why))` when it is another user's and the rotation must not start.
    pub(super) async fn foreign_secret(&self, w: &UserRun) -> Result<Option<String>> {
        let (account, user) = (&self.account.id, &w.user);
        let name = secret_name(account, &user.name);
        let why = |detail: String| {
            Some(format!(
                "not rotated: the secret {name} is not this user's ({detail}); keyguard does not \
                 reuse it. Rename or delete it, and the next run rotates"
            ))
        };
        match owner(&self.sm, account, &user.name, &user.user_id).await? {
            Owner::Nobody | Owner::This => Ok(None),
            Owner::Other(id) => Ok(why(format!(
                "it belongs to user id {id}, a user since renamed or deleted"
            ))),
            Owner::Untagged(secret_created) => {
                let user_created = iam::user_created(&self.iam, &user.name).await?;
                match (secret_created, user_created) {
                    // Made while this user existed: an earlier rotation's (or aws-samples').
                    // Whole seconds: IAM's CreateDate has no finer grain.
                    (Some(s), Some(u)) if s.timestamp() >= u.timestamp() => {
                        if !self.dry_run {
                            adopt(&self.sm, account, &user.name, &user.user_id).await?;
                        }
                        Ok(None)
                    }
                    (Some(s), Some(u)) => Ok(why(format!(
                        "it was created {} and this user {}: an earlier user of the name's",
                        s.format("%Y-%m-%d"),
                        u.format("%Y-%m-%d")
                    ))),
                    _ => Ok(why("neither its owner nor its age can be told".into())),
                }
            }
        }
    }
}
