//! Loading real and hostile specs.

use std::path::{Path, PathBuf};

use argus_policy::openapi::{LoadErrorKind, LoadOptions, Match, Method, Spec};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_crapi_spec_loads_and_every_operation_compiles() {
    let path = crate_dir().join("../../../shared/data/openapi/crapi-openapi-spec.json");
    if !path.exists() {
        eprintln!("SKIPPED: {} is absent (the shared data folder is not beside the repository)", path.display());
        return;
    }
    let spec = Spec::load(&path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(spec.version.starts_with("3.0"));
    assert!(spec.operations().len() >= 40, "{} operations", spec.operations().len());
    for op in spec.operations() {
        assert!(!op.id.is_empty());
        let concrete = op.path_template.replace(['{', '}'], "");
        match spec.match_request(op.method.as_str(), &concrete) {
            Match::Found(found, _) => assert_eq!(found.path_template, op.path_template, "{}", op.id),
            other => panic!("{} {}: {other:?}", op.method, op.path_template),
        }
    }
}

#[test]
fn the_demo_spec_loads() {
    let path = crate_dir().join("../argus-demo/openapi.yaml");
    let spec = Spec::load(&path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.version, "3.1.0");
    let ids: Vec<&str> = spec.operations().iter().map(|o| o.id.as_str()).collect();
    for id in ["listAccounts", "getAccount", "listAccountTransfers", "createTransfer", "getTransfer", "getHealth"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let op = spec.operation("createTransfer").unwrap();
    assert_eq!(op.method, Method::Post);
    assert_eq!(op.security.len(), 1);
    assert_eq!(op.security[0].schemes[0].scopes, ["transfers:write"]);
    assert!(spec.operation("getHealth").unwrap().allows_anonymous());
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("argus-oas-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const HEAD: &str = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n";

fn spec_with_schema_ref(reference: &str) -> String {
    format!(
        "{HEAD}paths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            \
         schema: {{$ref: '{reference}'}}\n      responses: {{'200': {{description: ok}}}}\n"
    )
}

#[test]
fn references_to_files_inside_the_folder_are_followed() {
    let dir = temp_dir("inside");
    write(
        &dir,
        "schemas/pet.yaml",
        "Pet:\n  type: object\n  properties:\n    name: {$ref: '#/Name'}\nName: {type: string, maxLength: 3}\n",
    );
    let root = write(&dir, "api.yaml", &spec_with_schema_ref("./schemas/pet.yaml#/Pet"));
    let spec = Spec::load(&root, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let op = spec.operations().first().unwrap();
    assert_eq!(op.id, "POST /a");
    assert_eq!(op.request_body.as_ref().unwrap().content_types().collect::<Vec<_>>(), ["application/json"]);
}

#[test]
fn references_that_leave_the_folder_are_refused() {
    let outer = temp_dir("escape");
    write(&outer, "secret.yaml", "Secret: {type: string}\n");
    let dir = outer.join("spec");
    std::fs::create_dir_all(&dir).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outer.join("secret.yaml"), dir.join("link.yaml")).unwrap();
    let cases = [
        ("../secret.yaml#/Secret", LoadErrorKind::OutsideSpecFolder),
        ("sub/../../secret.yaml#/Secret", LoadErrorKind::OutsideSpecFolder),
        ("%2E%2E/secret.yaml#/Secret", LoadErrorKind::OutsideSpecFolder),
        ("link.yaml#/Secret", LoadErrorKind::OutsideSpecFolder),
        ("https://example.com/s.yaml#/S", LoadErrorKind::RemoteRef),
        ("file:///etc/passwd", LoadErrorKind::RemoteRef),
        ("//example.com/s.yaml", LoadErrorKind::RemoteRef),
        ("#/components/schemas/Nope", LoadErrorKind::DanglingRef("/components/schemas/Nope".into())),
        ("#anchor", LoadErrorKind::BadRef),
    ];
    for (reference, kind) in cases {
        let root = write(&dir, "api.yaml", &spec_with_schema_ref(reference));
        match Spec::load(&root, &LoadOptions::default()) {
            Err(e) => {
                if reference == "sub/../../secret.yaml#/Secret" {
                    // `sub` does not exist: refused before the folder check, still refused.
                    assert!(matches!(e.kind, LoadErrorKind::Io(_) | LoadErrorKind::OutsideSpecFolder), "{e}");
                } else {
                    assert_eq!(e.kind, kind, "{reference}: {e}");
                }
                assert!(e.pointer.ends_with("/schema/$ref"), "the error names the pointer: {e}");
            }
            Ok(_) => panic!("{reference} was followed"),
        }
    }
    let absolute = outer.join("secret.yaml").display().to_string() + "#/Secret";
    let root = write(&dir, "api.yaml", &spec_with_schema_ref(&absolute));
    assert_eq!(Spec::load(&root, &LoadOptions::default()).unwrap_err().kind, LoadErrorKind::OutsideSpecFolder);
}

#[test]
fn inline_specs_cannot_reference_files() {
    let err = Spec::parse(&spec_with_schema_ref("other.yaml#/X"), &LoadOptions::default()).unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::OutsideSpecFolder);
}

#[test]
fn recursive_schemas_load_and_reference_loops_do_not_hang() {
    let recursive = format!(
        "{HEAD}paths:\n  /t:\n    post:\n      requestBody:\n        content:\n          application/json:\n            \
         schema: {{$ref: '#/components/schemas/Node'}}\n      responses: {{'200': {{description: ok}}}}\n\
         components:\n  schemas:\n    Node:\n      type: object\n      properties:\n        children:\n          \
         type: array\n          items: {{$ref: '#/components/schemas/Node'}}\n"
    );
    Spec::parse(&recursive, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let looping = format!(
        "{HEAD}paths:\n  /t:\n    get:\n      parameters: [{{$ref: '#/components/parameters/A'}}]\n      \
         responses: {{'200': {{description: ok}}}}\ncomponents:\n  parameters:\n    A: {{$ref: '#/components/parameters/B'}}\n    \
         B: {{$ref: '#/components/parameters/A'}}\n"
    );
    assert_eq!(Spec::parse(&looping, &LoadOptions::default()).unwrap_err().kind, LoadErrorKind::RefLoop);
    let self_schema = format!(
        "{HEAD}paths:\n  /t:\n    post:\n      requestBody:\n        content:\n          application/json:\n            \
         schema: {{$ref: '#/components/schemas/A'}}\n      responses: {{'200': {{description: ok}}}}\n\
         components:\n  schemas:\n    A: {{$ref: '#/components/schemas/B'}}\n    B: {{$ref: '#/components/schemas/A'}}\n"
    );
    // A schema that is only a loop of references is refused by the compiler, not looped on.
    let _ = Spec::parse(&self_schema, &LoadOptions::default());
}

#[test]
fn bad_documents_are_named() {
    let cases = [
        ("swagger: '2.0'\npaths: {}\n", "/openapi"),
        ("openapi: 4.0.0\npaths: {}\n", "/openapi"),
        (
            &format!("{HEAD}paths:\n  /a/{{id}}:\n    get:\n      responses: {{'200': {{description: ok}}}}\n") as &str,
            "/paths/~1a~1{id}/get",
        ),
        (
            &format!(
                "{HEAD}paths:\n  /a:\n    get:\n      parameters: [{{name: q, in: body}}]\n      responses: {{}}\n"
            ),
            "/paths/~1a/get/parameters/0",
        ),
        (
            &format!(
                "{HEAD}paths:\n  /a:\n    get:\n      parameters: [{{name: q, in: query, schema: {{type: string, pattern: '(?=x)'}}}}]\n      responses: {{}}\n"
            ),
            "/paths/~1a/get/parameters/0/schema",
        ),
        (
            &format!(
                "{HEAD}paths:\n  /a:\n    get:\n      operationId: x\n      responses: {{}}\n    post:\n      operationId: x\n      responses: {{}}\n"
            ),
            "/paths/~1a/post",
        ),
        (
            &format!(
                "{HEAD}paths:\n  /a:\n    get:\n      parameters: [{{name: m, in: path, required: true, style: matrix, schema: {{type: string}}}}]\n      responses: {{}}\n"
            ),
            "/paths/~1a/get/parameters/0",
        ),
    ];
    for (text, pointer) in cases {
        let err = Spec::parse(text, &LoadOptions::default()).unwrap_err();
        assert_eq!(err.pointer, pointer, "{err}");
        assert!(err.to_string().contains(&format!("#{pointer}:")), "{err}");
    }
}

#[test]
fn huge_files_are_refused_before_parsing() {
    let dir = temp_dir("huge");
    let mut text = spec_with_schema_ref("#/components/schemas/A");
    text.push_str(&format!("x-padding: '{}'\n", "a".repeat(4096)));
    let root = write(&dir, "api.yaml", &text);
    let options = LoadOptions { max_file_bytes: 1024, ..LoadOptions::default() };
    assert_eq!(Spec::load(&root, &options).unwrap_err().kind, LoadErrorKind::FileTooLarge(1024));
    assert_eq!(Spec::parse(&text, &options).unwrap_err().kind, LoadErrorKind::FileTooLarge(1024));
}

#[test]
fn yaml_alias_bombs_are_refused() {
    let mut text = format!("{HEAD}paths: {{}}\nx-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..12 {
        let items = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("x-a{i}: &a{i} [{items}]\n"));
    }
    assert!(matches!(Spec::parse(&text, &LoadOptions::default()).unwrap_err().kind, LoadErrorKind::Syntax(_)));
}
