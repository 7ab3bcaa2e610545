//! Third parties read the `.proto` files: every service, method, message, field, enum and enum
//! value must carry a comment. Checked on the compiled descriptor's source info.

use std::collections::HashSet;

use prost::Message as _;
use prost_types::FileDescriptorSet;

#[test]
fn every_element_of_the_contract_is_documented() {
    let set = FileDescriptorSet::decode(mttrly_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
    let mut missing = Vec::new();
    let mut checked = 0;
    for file in set.file.iter().filter(|f| f.package().starts_with("mttrly.")) {
        let info = file.source_code_info.as_ref().expect("protox keeps source info");
        let documented: HashSet<Vec<i32>> = info
            .location
            .iter()
            .filter(|l| l.leading_comments.as_deref().is_some_and(|c| !c.trim().is_empty()))
            .map(|l| l.path.clone())
            .collect();
        let mut check = |path: Vec<i32>, name: String| {
            checked += 1;
            if !documented.contains(&path) {
                missing.push(format!("{}: {name}", file.name()));
            }
        };
        for (i, message) in file.message_type.iter().enumerate() {
            let i = i32::try_from(i).expect("small");
            check(vec![4, i], message.name().to_owned());
            for (j, field) in message.field.iter().enumerate() {
                check(vec![4, i, 2, i32::try_from(j).expect("small")], format!("{}.{}", message.name(), field.name()));
            }
        }
        for (i, enumeration) in file.enum_type.iter().enumerate() {
            let i = i32::try_from(i).expect("small");
            check(vec![5, i], enumeration.name().to_owned());
            for (j, value) in enumeration.value.iter().enumerate() {
                check(
                    vec![5, i, 2, i32::try_from(j).expect("small")],
                    format!("{}.{}", enumeration.name(), value.name()),
                );
            }
        }
        for (i, service) in file.service.iter().enumerate() {
            let i = i32::try_from(i).expect("small");
            check(vec![6, i], service.name().to_owned());
            for (j, method) in service.method.iter().enumerate() {
                check(vec![6, i, 2, i32::try_from(j).expect("small")], format!("{}.{}", service.name(), method.name()));
            }
        }
    }
    assert!(checked > 100, "only {checked} elements found; is the descriptor set complete?");
    assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
}
