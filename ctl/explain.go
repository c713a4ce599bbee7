package ctl

import (
	"errors"

	"github.com/spf13/cobra"
)

func newExplainCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "explain",
		Short: "not built yet",
		RunE: func(*cobra.Command, []string) error {
			_ = o
			return errors.New("explain: not built yet")
		},
	}
}
