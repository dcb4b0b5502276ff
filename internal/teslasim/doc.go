// Package teslasim is a local, faithful stand-in for Tesla's auth.tesla.com,
// the fleet-auth token host and the Fleet API user endpoints, with faults on
// demand. Tests and `web dev` use it in-process; `web tesla-sim` runs it alone.
//
// It follows the Tesla facts in docs/tesla.md, quirks included:
//   - the discovery `issuer` (default https://auth.tesla.com/oauth2/v3/nts) is
//     not the URL the metadata is served from, so go-oidc's NewProvider
//     refuses it; there is no revocation_endpoint;
//   - the token endpoint to configure (TokenURL, the "fleet-auth" host) differs
//     from the discovered token_endpoint; both work;
//   - the callback carries `issuer` (CallbackIssuer, URL()+"/oauth2/v3") and
//     `locale`; codes and refresh tokens carry a region prefix (NA_, EU_, CN_);
//   - owners may uncheck scopes on the consent page; openid and
//     offline_access are fixed; require_requested_scopes=true fixes them all;
//   - codes are single use and live 10 minutes; access tokens live 8 hours
//     and are RS256 JWTs with scp, ou_code and aud (the regional base URLs);
//     refresh tokens are single use and live 3 months, the most recently used
//     one keeps working for 24 hours, anything older answers 401
//     login_required; a refresh invalidates earlier access tokens of that
//     owner and client (Config.KeepOldAccessTokens switches that off);
//   - the ID token has iss, aud (client id), sub, nonce, iat, exp and no email;
//     email and name come from userinfo;
//   - Fleet API bases are URL()+"/fleet/na", "/fleet/eu", "/fleet/cn"; the
//     wrong region answers 421; with Config.RequirePartnerRegistration, user
//     endpoints answer 412 until POST /api/1/partner_accounts (with a
//     client_credentials partner token) registered a domain in that region;
//   - owners remove the app at /user/revoke/consent (email and password
//     confirm it; the sim keeps no login session), which kills all their
//     tokens for the client.
//
// Any email signs in as a distinct owner with a stable sub derived from the
// email, in region "na" unless the local part ends in "+eu" or "+cn"; every
// owner's password is "tesla" unless configured. Each owner gets 1 to 3
// deterministic vehicles unless configured.
//
// Not modelled: real Tesla hosts and TLS, vehicle data or commands, the
// vehicle-command protocol and virtual keys, the partner public key fetch at
// /.well-known/appspecific/com.tesla.3p.public-key.pem, MFA and captchas,
// password changes, rate limits other than injected 429s, the legacy owner
// API, China's separate auth host, and scope widening without a new
// authorization. Time is the sim's Clock, which tests advance.
package teslasim
