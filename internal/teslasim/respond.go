package teslasim

import (
	"encoding/json"
	"net/http"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// teslaError answers in the shape of Tesla's auth errors:
// {"error":"...","error_description":"...","referenceID":"..."}.
func teslaError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{
		"error":             code,
		"error_description": desc,
		"referenceID":       randHex(8),
	})
}

// fleetJSONError answers in the shape of Fleet API errors:
// {"response":null,"error":"...","error_description":""}.
func fleetJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"response": nil, "error": msg, "error_description": ""})
}
