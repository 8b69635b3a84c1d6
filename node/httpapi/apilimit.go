package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/node/internal/ratelimit"
)

// Bucket kinds of the client API's rate limits (the bucket label of
// rhizome_api_rate_limited_total).
const (
	bucketDevice     = "device"
	bucketUser       = "user"
	bucketRoom       = "room"
	bucketRegisterIP = "register_ip"
)

// apiLimiter holds the client API's rate limits (config api.rate).
type apiLimiter struct {
	device, user, room, registerIP *ratelimit.Buckets
	rateLimited                    *prometheus.CounterVec // by bucket kind
	now                            func() time.Time
}

func newAPILimiter(r RateLimits, rateLimited *prometheus.CounterVec, now func() time.Time) *apiLimiter {
	return &apiLimiter{
		device: ratelimit.New(bucketDevice, r.Device), user: ratelimit.New(bucketUser, r.User),
		room: ratelimit.New(bucketRoom, r.Room), registerIP: ratelimit.New(bucketRegisterIP, r.RegisterIP),
		rateLimited: rateLimited, now: now,
	}
}

// allow spends a token of each bucket in order, and answers 429 with
// Retry-After for the first that has none. keys pairs each bucket with its
// key.
func (l *apiLimiter) allow(w http.ResponseWriter, keys ...bucketKey) bool {
	now := l.now()
	for _, k := range keys {
		ok, retry := k.b.Take(k.key, now)
		if ok {
			continue
		}
		secs := int(math.Ceil(retry.Seconds()))
		if secs < 1 {
			secs = 1
		}
		l.rateLimited.WithLabelValues(k.b.Kind()).Inc()
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, apierror.New(http.StatusTooManyRequests, clientapi.CodeRateLimited, "too many requests for this %s: retry after %d s (limit %s)", k.b.Kind(), secs, k.b.Describe()))
		return false
	}
	return true
}

// bucketKey names one bucket of a kind.
type bucketKey struct {
	b   *ratelimit.Buckets
	key string
}
