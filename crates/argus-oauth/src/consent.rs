//! How scopes read on the consent page.

/// A scope in plain words for the consent page.
///
/// The well-known OpenID scopes have fixed wording; API scopes of the form `resource:read` / `resource:write`
/// read as "Read your resource" / "Change your resource"; anything else is shown as it is.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => return "Confirm who you are".to_owned(),
        "profile" => return "See your user name".to_owned(),
        "email" => return "See your email address".to_owned(),
        "offline_access" => return "Stay connected while you are away".to_owned(),
        "account" => return "See and manage your devices, apps and notices".to_owned(),
        _ => {}
    }
    match scope.rsplit_once(':') {
        Some((resource, "read")) if !resource.is_empty() => {
            format!("Read your {}", humanize(resource))
        }
        Some((resource, "write")) if !resource.is_empty() => {
            format!("Change your {}", humanize(resource))
        }
        _ => scope.to_owned(),
    }
}

fn humanize(resource: &str) -> String {
    resource.replace(['_', '-', '.', ':'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording() {
        assert_eq!(describe_scope("openid"), "Confirm who you are");
        assert_eq!(describe_scope("account"), "See and manage your devices, apps and notices");
        assert_eq!(describe_scope("accounts:read"), "Read your accounts");
        assert_eq!(describe_scope("transfers:write"), "Change your transfers");
        assert_eq!(describe_scope("bank_cards:read"), "Read your bank cards");
        assert_eq!(describe_scope(":read"), ":read");
        assert_eq!(describe_scope("admin"), "admin");
    }
}
