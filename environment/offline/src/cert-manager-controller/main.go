// Command cert-manager-controller runs cert-manager's control loops on the offline cluster.
//
// Why this file exists: cert-manager's own binary lives in the nested module
// github.com/cert-manager/cert-manager/cmd/controller, which the Go module proxy does not serve
// (only the root module is published). The root module, however, exports everything a controller
// process needs: the ContextFactory (pkg/controller), the control loops (pkg/controller/...,
// each registering itself in controller.Known() from an init function) and the issuer back ends
// (pkg/issuer/..., registered the same way). This small main wires them together.
//
// Scope, on purpose: selfSigned and CA issuers only, plus the ingress-shim (an Ingress annotated
// cert-manager.io/issuer or cert-manager.io/cluster-issuer gets a Certificate per tls entry). No
// gateway-shim: it would need read access to Gateways/HTTPRoutes (more RBAC) and EnableGatewayAPI. ACME, Vault and Venafi pull in large cloud
// SDKs and need network access the offline cluster does not have; there is no webhook and no
// cainjector (the CRDs are v1-only, so no conversion webhook is needed).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/metrics"

	// Control loops: importing a package registers it in controller.Known(). Only these are
	// compiled in, so --controllers can never name one this binary cannot run.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/ingresses"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"

	// Issuer back ends the issuers/clusterissuers loops can set up (Ready condition).
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// The lease name upstream uses, so that a later switch to the upstream chart finds the same lock.
const leaseName = "cert-manager-controller"

type options struct {
	controllers              string
	namespace                string
	clusterResourceNamespace string
	leaderElect              bool
	leaderElectionNamespace  string
	workers                  int
	healthAddress            string
	kubeconfig               string
	apiServerHost            string
}

func parseFlags() options {
	var o options
	klog.InitFlags(nil) // -v=N: cert-manager logs through klog
	flag.StringVar(&o.controllers, "controllers", "*",
		"comma-separated controller names or path.Match patterns (e.g. certificates-*); '*' runs every compiled-in one")
	flag.StringVar(&o.namespace, "namespace", "", "watch only this namespace ('' = all namespaces)")
	flag.StringVar(&o.clusterResourceNamespace, "cluster-resource-namespace", "cert-manager",
		"namespace where ClusterIssuers read their Secrets (e.g. the CA key pair)")
	flag.BoolVar(&o.leaderElect, "leader-elect", true, "take a Lease before running, so two replicas never both write")
	flag.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "cert-manager", "namespace of the Lease")
	flag.IntVar(&o.workers, "workers", 5, "concurrent workers per controller")
	flag.StringVar(&o.healthAddress, "health-address", ":9403", "address of the /livez endpoint ('' = off)")
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file ('' = in-cluster ServiceAccount)")
	flag.StringVar(&o.apiServerHost, "master", "", "API server URL override")
	flag.Parse()
	return o
}

// selectControllers returns the registered controller names the --controllers patterns match,
// and fails on a pattern that matches nothing (a typo would otherwise silently disable a loop).
func selectControllers(spec string) ([]string, error) {
	var known []string
	for name := range controller.Known() {
		known = append(known, name)
	}
	sort.Strings(known)
	chosen := map[string]bool{}
	for _, pattern := range strings.Split(spec, ",") {
		pattern = strings.TrimSpace(pattern)
		if pattern == "" {
			continue
		}
		matched := false
		for _, name := range known {
			if ok, err := path.Match(pattern, name); err != nil {
				return nil, fmt.Errorf("--controllers: bad pattern %q: %w", pattern, err)
			} else if ok {
				chosen[name], matched = true, true
			}
		}
		if !matched {
			return nil, fmt.Errorf("--controllers: %q matches none of the compiled-in controllers %v", pattern, known)
		}
	}
	var names []string
	for _, name := range known {
		if chosen[name] {
			names = append(names, name)
		}
	}
	return names, nil
}

func main() {
	o := parseFlags()
	names, err := selectControllers(o.controllers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, logf.Log, "controller")
	log := logf.FromContext(ctx)
	log.Info("starting", "controllers", names, "namespace", o.namespace, "leaderElect", o.leaderElect)

	factory, err := controller.NewContextFactory(ctx, controller.ContextOptions{
		APIServerHost:      o.apiServerHost,
		Kubeconfig:         o.kubeconfig,
		KubernetesAPIQPS:   20, // upstream defaults
		KubernetesAPIBurst: 50,
		Namespace:          o.namespace,
		Clock:              clock.RealClock{},
		// Every control loop counts its syncs here; nil would panic. Nothing serves /metrics.
		Metrics:            metrics.New(log, clock.RealClock{}),
		IssuerOptions:      controller.IssuerOptions{ClusterResourceNamespace: o.clusterResourceNamespace},
		IngressShimOptions: ingressShimDefaults(),
	})
	if err != nil {
		log.Error(err, "cannot build the controller context")
		os.Exit(1)
	}
	serveLivez(o.healthAddress)
	if !o.leaderElect {
		runControllers(ctx, factory, names, o.workers)
		return
	}
	runWithLeaderElection(ctx, factory, o, func(leaderCtx context.Context) {
		runControllers(leaderCtx, factory, names, o.workers)
	})
}

// ingressShimDefaults returns upstream's defaults (internal/apis/config/controller/v1alpha1/defaults.go),
// so an annotated Ingress gets the same Certificate as with the online cert-manager; the zero
// value would silently ignore the kubernetes.io/tls-acme annotation.
func ingressShimDefaults() controller.IngressShimOptions {
	return controller.IngressShimOptions{
		DefaultIssuerName:                 "", // no default issuer: tls-acme alone is reported as BadConfig, as upstream
		DefaultIssuerKind:                 "Issuer",
		DefaultIssuerGroup:                "cert-manager.io",
		DefaultAutoCertificateAnnotations: []string{"kubernetes.io/tls-acme"},
	}
}

// runControllers builds each chosen loop (which registers the informers it needs), then starts
// the shared informers, then blocks until every loop has returned.
func runControllers(ctx context.Context, factory *controller.ContextFactory, names []string, workers int) {
	log := logf.FromContext(ctx)
	shared, err := factory.Build()
	if err != nil {
		log.Error(err, "cannot build the shared context")
		os.Exit(1)
	}
	var loops sync.WaitGroup
	for _, name := range names {
		if name == clusterissuers.ControllerName && shared.Namespace != "" {
			log.Info("skipping controller: ClusterIssuers are cluster-wide, --namespace is set", "controller", name)
			continue
		}
		loop, err := controller.Known()[name](factory)
		if err != nil {
			log.Error(err, "cannot construct controller", "controller", name)
			os.Exit(1)
		}
		loops.Add(1)
		go func() {
			defer loops.Done()
			if err := loop.Run(workers, ctx); err != nil {
				log.Error(err, "controller stopped with an error", "controller", name)
				os.Exit(1)
			}
		}()
	}
	// Informer factories only start the informers registered so far, hence after construction.
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	loops.Wait()
	log.Info("all controllers stopped")
}

func runWithLeaderElection(ctx context.Context, factory *controller.ContextFactory, o options, run func(context.Context)) {
	log := logf.FromContext(ctx, "leader-election")
	le, err := factory.Build("leader-election")
	if err != nil {
		log.Error(err, "cannot build the leader-election client")
		os.Exit(1)
	}
	host, err := os.Hostname()
	if err != nil {
		log.Error(err, "cannot read the hostname (the lease identity)")
		os.Exit(1)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.leaderElectionNamespace, Name: leaseName},
		Client:     le.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: host + "-k8slab", EventRecorder: le.Recorder},
	}
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   60 * time.Second, // upstream defaults
		RenewDeadline:   40 * time.Second,
		RetryPeriod:     15 * time.Second,
		ReleaseOnCancel: true, // a rolling update hands over at once instead of after LeaseDuration
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: run,
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					log.Info("lost the lease; exiting so the kubelet restarts a clean follower")
					os.Exit(1)
				}
			},
		},
	})
}

// serveLivez answers the liveness probe: the process is up and not deadlocked in main.
func serveLivez(addr string) {
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	server := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := server.ListenAndServe(); err != nil {
			klog.ErrorS(err, "livez server stopped", "address", addr)
		}
	}()
}
