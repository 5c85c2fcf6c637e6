// Package middleware is net/http middleware that finds the tenant of a
// request, validates it, checks that the caller may act for it, and stores
// it in the request context, where pgtenancy's pool picks it up.
//
//	mw, err := middleware.New(middleware.Config{
//		KeyType:   rls.BigInt,
//		Resolver:  middleware.Header(""), // X-Tenant-ID
//		Authorize: isMember,               // see Authorization
//	})
//	if err != nil { ... } // a bad Config: errors.Is(err, middleware.ErrConfig)
//	http.ListenAndServe(addr, mw(app))
//
// A handler then reads the tenant with [rls.FromContext] (or [rls.Require]).
// The tenant never enters the context before it has been parsed with
// [rls.Parse] for [Config.KeyType] and allowed by [Config.Authorize]; on any
// failure the next handler is not called.
//
// # Resolvers
//
// A [Resolver] returns the raw value, [ErrNotFound], or an error.
//
//   - [Header]: a request header, X-Tenant-ID by default.
//   - [Subdomain]: the one label below a base domain ("acme.example.com").
//   - [PathValue]: a ServeMux path wildcard; [PathFunc] for other routers.
//   - [Cookie]: a cookie.
//   - [JWTClaim]: a claim of a JWT verified with a jwt.Keyfunc, for a fixed
//     list of algorithms, with a required expiry; [VerifiedClaim] for a
//     token the application verifies itself. Both read the bearer token of
//     the Authorization header; no claim of an unverified token is ever used.
//     No token is [ErrNotFound]; a verified token without the claim is
//     [ErrMissingTenant], since its holder is granted no tenant.
//   - [Func]: anything else.
//
// [FirstOf] takes the first resolver that finds a value; an error (a forged
// token, or a verified one without the claim) stops it rather than falling
// through to a weaker source.
// [Agree] demands that all resolvers that find a value agree, else
// [ErrConflict] (403); [Required] makes a source mandatory:
//
//	middleware.Agree(middleware.Required(middleware.JWTClaim(opts)), middleware.Subdomain("example.com"))
//
// # Routers
//
// With net/http's ServeMux, wrap the handler registered for a pattern, not
// the mux: the mux sets path values while routing.
//
//	mux.Handle("GET /t/{tenant}/orders", mw(orders)) // Resolver: middleware.PathValue("tenant")
//
// With chi, mount the middleware on the route that holds the parameter and
// read it with [PathFunc] (pgtenancy does not depend on chi):
//
//	r.Route("/t/{tenant}", func(r chi.Router) {
//		r.Use(mw) // Resolver: middleware.PathFunc(func(r *http.Request) string { return chi.URLParam(r, "tenant") })
//		r.Get("/orders", orders)
//	})
//
// # Authorization
//
// A header, a path or a subdomain is chosen by the caller. [Config.Authorize]
// decides whether the authenticated caller may act for the resolved tenant,
// and is required. [AllowAny] states that the resolver is itself a
// credential, and [New] accepts it only when every value the resolver can
// yield comes from one: JWTClaim or VerifiedClaim, FirstOf of credentials
// only, or Agree with a Required credential. FirstOf(JWTClaim(...),
// Header("")) with AllowAny is refused, since a request without a token
// would name its own tenant. The usual check looks up a membership
// table through a separate pool whose role may read all memberships, since
// the tenant pool sees only the current tenant's rows:
//
//	admin, err := pgxpool.New(ctx, adminURL) // not the tenant pool
//	...
//	Authorize: func(r *http.Request, t rls.Tenant) error {
//		user, ok := auth.UserID(r.Context()) // set by the authentication middleware
//		if !ok {
//			return middleware.ErrUnauthenticated // 401
//		}
//		var one int
//		err := admin.QueryRow(r.Context(),
//			"SELECT 1 FROM memberships WHERE user_id = $1 AND tenant_id = $2",
//			user, t.String()).Scan(&one)
//		switch {
//		case errors.Is(err, pgx.ErrNoRows):
//			return middleware.ErrForbidden // 403
//		case err != nil:
//			return fmt.Errorf("%w: membership lookup: %w", middleware.ErrInternal, err) // 500
//		}
//		return nil
//	},
//
// # Failures
//
//	ErrMissingTenant    400  no tenant, or a verified token without the claim (Config.MissingStatus, e.g. 401)
//	ErrMalformedTenant  400  invalid for the key type, over MaxValueLen bytes, control characters
//	ErrUnauthenticated  401  a token that fails verification
//	ErrForbidden        403  denied by Authorize
//	ErrConflict         403  Agree's resolvers disagree
//	ErrInternal         500  a resolver or Authorize failed; the body says only "Internal Server Error"
//
// [Config.ErrorHandler] receives an [*Error] carrying the kind, the status
// and the cause (an [*rls.InvalidTenantError] for a malformed value), for
// logging or a JSON body; the default writes a short fixed text that never
// echoes the value. [Config.ExemptPaths], [Config.ExemptPrefixes] and
// [Config.Exempt] let health checks and static files through without a
// tenant.
//
// [New] reports a bad [Config] with an error matching [ErrConfig]: a
// missing Authorize or Resolver, an invalid key type, a resolver built
// with bad arguments (such as [JWTOptions] without Methods), AllowAny
// with a resolver that is not a credential.
//
// # Outside HTTP
//
// The request context is canceled when the handler returns. A goroutine
// that outlives the request keeps the tenant, without the cancellation, in
// context.WithoutCancel(r.Context()). A job queued for a worker carries
// t.String() in its payload, and the worker restores the tenant:
//
//	t, err := rls.Parse(rls.BigInt, job.Tenant)
//	if err != nil { ... }
//	ctx = rls.WithTenant(ctx, t)
//
// # Cost
//
// On the header path the middleware allocates twice per request, the
// context value and the request copy, which is the floor for any middleware
// that sets a context value (see BenchmarkFloor): it keeps a small cache of
// tenants it has parsed and allowed before, so a repeated value is neither
// parsed nor boxed again. Authorize still runs on every request.
package middleware
