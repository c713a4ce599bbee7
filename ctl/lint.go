package ctl

import (
	"errors"

	"github.com/spf13/cobra"
)

func newLintCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "lint",
		Short: "not built yet",
		RunE: func(*cobra.Command, []string) error {
			_ = o
			return errors.New("lint: not built yet")
		},
	}
}
