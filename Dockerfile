# A static binary (modernc.org/sqlite is pure Go) on a slim Debian base with
# CA certificates (Stripe, S3) and setpriv, which the entrypoint uses to
# drop from root to the app's user once the volume is its own.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /ticketing .

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin ticketing \
 && mkdir /data && chown ticketing:ticketing /data
COPY --from=build /ticketing /usr/local/bin/ticketing
COPY deploy/entrypoint.sh /usr/local/bin/entrypoint
ENV DATA_DIR=/data ADDR=:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/entrypoint"]
