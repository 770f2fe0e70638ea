package gov

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxActions bounds the actions of one proposal.
const MaxActions = 100

// Action is one action of a proposal: a name of the constitution's
// actions map and its arguments (any JSON value).
type Action struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Proposal is a decoded proposal body, CCF's {"actions":[{name, args}]}.
type Proposal struct {
	Actions []Action `json:"actions"`
}

// DecodeProposal checks the shape of a proposal body before the
// constitution sees it: UTF-8 JSON, one object with an "actions" array of
// 1 to MaxActions objects, each with a non-empty string name. Unknown
// top-level fields are allowed (CCF passes the whole body to validate,
// which decides); trailing data is not. What the actions mean is the
// constitution's validate's to judge.
func DecodeProposal(body []byte) (*Proposal, error) {
	if !utf8.Valid(body) {
		return nil, errors.New("the proposal is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("the proposal is not a JSON object: %v", err)
	}
	if top == nil {
		return nil, errors.New("the proposal is not a JSON object")
	}
	if dec.More() {
		return nil, errors.New("the proposal has data after its JSON object")
	}
	raw, ok := top["actions"]
	if !ok {
		return nil, errors.New(`the proposal has no "actions" array`)
	}
	var actions []json.RawMessage
	if err := json.Unmarshal(raw, &actions); err != nil || actions == nil {
		return nil, errors.New(`the proposal's "actions" is not an array`)
	}
	if len(actions) == 0 || len(actions) > MaxActions {
		return nil, fmt.Errorf("the proposal has %d actions; 1 to %d are allowed", len(actions), MaxActions)
	}
	p := &Proposal{Actions: make([]Action, len(actions))}
	for i, a := range actions {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(a, &fields); err != nil || fields == nil {
			return nil, fmt.Errorf("action %d is not a JSON object", i)
		}
		var name string
		if err := json.Unmarshal(fields["name"], &name); err != nil || name == "" {
			return nil, fmt.Errorf("action %d has no non-empty string name", i)
		}
		p.Actions[i] = Action{Name: name, Args: fields["args"]}
	}
	return p, nil
}
