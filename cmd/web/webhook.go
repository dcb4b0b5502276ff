package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"teslalink/internal/db"
	"teslalink/internal/webhook"
)

// cmdWebhook manages the endpoints that receive link events: add, list,
// remove, and the recent delivery attempts.
func cmdWebhook(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return &configError{"webhook", "want 'add URL [--events a,b]', 'list', 'remove ID' or 'deliveries [--failed]' (see 'web webhook --help')"}
	}
	switch args[0] {
	case "add":
		return webhookAdd(ctx, args[1:], stdout)
	case "list":
		if len(args) > 1 {
			return &configError{"webhook list", "takes no arguments"}
		}
		return withStore(ctx, func(store *db.Store) error { return webhookList(ctx, store, stdout) })
	case "remove":
		if len(args) != 2 {
			return &configError{"webhook remove", "want exactly one endpoint ID (see 'web webhook list')"}
		}
		id, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || id <= 0 {
			return &configError{"webhook remove ID", "must be an endpoint number as 'web webhook list' shows it"}
		}
		return withStore(ctx, func(store *db.Store) error {
			if err := store.RemoveWebhookEndpoint(ctx, id); errors.Is(err, db.ErrNotFound) {
				return fmt.Errorf("no webhook endpoint %d (see 'web webhook list')", id)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Webhook endpoint %d removed: it gets no new events, and its pending deliveries are cancelled.\n", id)
			return nil
		})
	case "deliveries":
		fs, err := findCommand("webhook deliveries").parseFlags(args[1:])
		if err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return &configError{"webhook deliveries", "takes no arguments besides --failed and --limit"}
		}
		limit, err := strconv.Atoi(flagString(fs, "limit"))
		if err != nil || limit < 1 || limit > 1000 {
			return &configError{"--limit", "must be a whole number from 1 to 1000"}
		}
		return withStore(ctx, func(store *db.Store) error {
			return webhookDeliveries(ctx, store, flagBool(fs, "failed"), limit, stdout)
		})
	}
	return &configError{"webhook", fmt.Sprintf("unknown subcommand %q (want add, list, remove or deliveries)", args[0])}
}

func webhookAdd(ctx context.Context, args []string, stdout io.Writer) error {
	var url string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		url, args = args[0], args[1:]
	}
	fs, err := findCommand("webhook add").parseFlags(args)
	if err != nil {
		return err
	}
	if url == "" && fs.NArg() == 1 {
		url = fs.Arg(0)
	} else if fs.NArg() > 0 || url == "" {
		return &configError{"webhook add", "want exactly one endpoint URL"}
	}
	if err := webhook.CheckURL(url); err != nil {
		return &configError{"webhook add URL", err.Error()}
	}
	var types []string
	if v := flagString(fs, "events"); v != "" {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if !slices.Contains(db.EventTypes, t) {
				return &configError{"--events", fmt.Sprintf("unknown event %q (known: %s)", t, strings.Join(db.EventTypes, ", "))}
			}
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	secret := webhook.NewSecret()
	return withStore(ctx, func(store *db.Store) error {
		ep, err := store.CreateWebhookEndpoint(ctx, url, secret, types)
		if err != nil {
			return err
		}
		events := "every event"
		if len(types) > 0 {
			events = strings.Join(types, ", ")
		}
		fmt.Fprintf(stdout, "Webhook endpoint %d added: %s gets %s.\n\n", ep.ID, url, events)
		fmt.Fprintf(stdout, "Signing secret (shown only this once):\n\n    %s\n\n", secret)
		fmt.Fprintln(stdout, "Verify each request with any Standard Webhooks library (headers webhook-id,")
		fmt.Fprintln(stdout, "webhook-timestamp, webhook-signature). Remove with: web webhook remove", ep.ID)
		return nil
	})
}

func webhookList(ctx context.Context, store *db.Store, stdout io.Writer) error {
	eps, err := store.ListWebhookEndpoints(ctx)
	if err != nil {
		return err
	}
	if len(eps) == 0 {
		fmt.Fprintln(stdout, "no webhook endpoints yet; add one with: web webhook add URL")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tEVENTS\tSTATUS\tLAST SUCCESS\tCREATED")
	for _, ep := range eps {
		events := "all"
		if len(ep.EventTypes) > 0 {
			events = strings.Join(ep.EventTypes, ",")
		}
		status := "ok"
		if ep.ConsecutiveFailures > 0 {
			status = fmt.Sprintf("FAILING since %s (%d failed attempts in a row)", timeOrDash(ep.FailingSince, "-"), ep.ConsecutiveFailures)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", ep.ID, ep.URL, events, status, timeOrDash(ep.LastSuccessAt, "never"),
			timeOrDash(ep.CreatedAt, "-"))
	}
	return tw.Flush()
}

func webhookDeliveries(ctx context.Context, store *db.Store, failed bool, limit int, stdout io.Writer) error {
	rows, err := store.ListWebhookDeliveries(ctx, failed, limit)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		if failed {
			fmt.Fprintln(stdout, "no failed deliveries")
		} else {
			fmt.Fprintln(stdout, "no deliveries yet")
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DELIVERY\tENDPOINT\tEVENT\tWEBHOOK-ID\tLINK\tSTATUS\tATTEMPTS\tLAST ATTEMPT\tHTTP\tLATENCY\tERROR\tNEXT TRY")
	for _, d := range rows {
		last, code, latency, msg := "-", "-", "-", ""
		if a := d.Last; a != nil {
			last = timeOrDash(a.At, "-")
			if a.StatusCode != 0 {
				code = strconv.Itoa(a.StatusCode)
			}
			latency = strconv.FormatInt(a.Latency.Milliseconds(), 10) + " ms"
			msg = a.Error
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.EndpointID, d.Type, d.MsgID, d.LinkID,
			d.Status, d.Attempts, last, code, latency, msg, timeOrDash(d.NextAttempt, "-"))
	}
	return tw.Flush()
}
