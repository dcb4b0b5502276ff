package oidc

// AuthorizationEndpoint returns the discovered authorization_endpoint ("" before discovery).
func (c *Client) AuthorizationEndpoint() string {
	if s := c.st.Load(); s != nil {
		return s.meta.AuthorizationEndpoint
	}
	return ""
}
