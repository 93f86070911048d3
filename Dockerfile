# A static binary (modernc.org/sqlite is pure Go) on a distroless base that
# has CA certificates for Stripe and S3 and nothing else.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /ticketing .

FROM gcr.io/distroless/static-debian12
COPY --from=build /ticketing /ticketing
EXPOSE 8080
ENTRYPOINT ["/ticketing"]
