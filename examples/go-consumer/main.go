// Command go-consumer reads a FIML topic with no file of FIML's: each record's Confluent header
// names its schema id, and the schema comes from the schema registry (cached per id).
//
// It prints one JSON line per record: topic, partition, offset, schema_id and the decoded value
// (Avro unions as plain values, timestamp-micros fields as RFC 3339 times). Basic-auth
// credentials for the registry, if any, come from SCHEMA_REGISTRY_USERNAME and
// SCHEMA_REGISTRY_PASSWORD.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// decoder turns Confluent-framed Avro values into maps, with writer schemas from the registry.
type decoder struct {
	registry *sr.Client
	schemas  map[int]avro.Schema
}

func (d *decoder) schema(ctx context.Context, id int) (avro.Schema, error) {
	if s, ok := d.schemas[id]; ok {
		return s, nil
	}
	found, err := d.registry.SchemaByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("schema %d: %w", id, err)
	}
	s, err := avro.Parse(found.Schema)
	if err != nil {
		return nil, fmt.Errorf("parse schema %d: %w", id, err)
	}
	d.schemas[id] = s
	return s, nil
}

func (d *decoder) decode(ctx context.Context, framed []byte) (int, map[string]any, error) {
	var header sr.ConfluentHeader
	id, payload, err := header.DecodeID(framed)
	if err != nil {
		return 0, nil, err
	}
	s, err := d.schema(ctx, id)
	if err != nil {
		return id, nil, err
	}
	value := map[string]any{}
	if err := avro.Unmarshal(s, payload, &value); err != nil {
		return id, nil, fmt.Errorf("decode with schema %d: %w", id, err)
	}
	return id, value, nil
}

func main() {
	registry := flag.String("registry", "http://127.0.0.1:8081/apis/ccompat/v7",
		"schema registry URL (Confluent API)")
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap servers")
	topic := flag.String("topic", "fiml.quotes", "topic to read from its start")
	limit := flag.Int("max", 10, "records to print before exiting")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()

	options := []sr.ClientOpt{sr.URLs(*registry)}
	if user := os.Getenv("SCHEMA_REGISTRY_USERNAME"); user != "" {
		options = append(options, sr.BasicAuth(user, os.Getenv("SCHEMA_REGISTRY_PASSWORD")))
	}
	registryClient, err := sr.NewClient(options...)
	if err != nil {
		log.Fatal(err)
	}
	d := &decoder{registry: registryClient, schemas: map[int]avro.Schema{}}

	client, err := kgo.NewClient(kgo.SeedBrokers(*brokers), kgo.ConsumeTopics(*topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	out := json.NewEncoder(os.Stdout)
	for printed := 0; printed < *limit; {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			log.Fatalf("stopped after %d records: %v", printed, ctx.Err())
		}
		fetches.EachError(func(t string, p int32, err error) { log.Fatalf("fetch %s/%d: %v", t, p, err) })
		for it := fetches.RecordIter(); !it.Done() && printed < *limit; printed++ {
			r := it.Next()
			id, value, err := d.decode(ctx, r.Value)
			if err != nil {
				log.Fatalf("%s/%d offset %d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			line := map[string]any{"topic": r.Topic, "partition": r.Partition, "offset": r.Offset,
				"schema_id": id, "value": value}
			if err := out.Encode(line); err != nil {
				log.Fatalf("%s/%d offset %d: %v", r.Topic, r.Partition, r.Offset, err)
			}
		}
	}
}
