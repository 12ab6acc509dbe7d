// Package validate is the quality gate of a model version before it is
// rolled out (`gpufleet validate`): it loads the version from a model
// repository with the inference server's own code (pkg/inference/model and
// the CPU backend), runs a labelled evaluation set through it, computes
// regression metrics (RMSE, MAE, R², the share of predictions within a
// tolerance) or, for classifiers, accuracy, and a bias gap between groups
// of a column, and checks them against thresholds. Comparing a candidate
// with the serving version is one call. Every failed check is named.
package validate
