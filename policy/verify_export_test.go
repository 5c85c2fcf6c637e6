package policy

// SetTenantBody exposes the expected body of pgtenancy.set_tenant to the
// external tests, which compare it with what the migrations package
// installs.
var SetTenantBody = setTenantBody
