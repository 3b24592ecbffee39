// Command cluster runs a small but real Kubernetes control plane in one process, on loopback,
// for liteshift's end-to-end tests: embedded etcd, kube-apiserver (RBAC, a static admin token,
// ServiceAccount tokens signed with a generated key) and kube-controller-manager with only the
// controllers the tests rely on (garbage collector, StatefulSet, Job, ...). There is no kubelet
// and no scheduler, so Pods are created but never run.
//
// Once everything is up it writes an admin kubeconfig to -kubeconfig (atomically, so a reader
// that sees the file can use it) and serves until SIGTERM or SIGINT, then stops cleanly.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
)

// defaultControllers are the kube-controller-manager controllers the e2e tests need. The
// serviceaccount controller creates each namespace's "default" ServiceAccount, without which
// the ServiceAccount admission plugin refuses the Pods a StatefulSet or Job creates; the
// PVC protection controller removes the finalizer the apiserver puts on every claim, so
// deleting a PVC completes.
const defaultControllers = "garbage-collector-controller,statefulset-controller,job-controller," +
	"serviceaccount-controller,namespace-controller,deployment-controller,replicaset-controller," +
	"persistentvolumeclaim-protection-controller"

func main() {
	dataDir := flag.String("data-dir", "", "directory for etcd data, certificates and keys (required)")
	kubeconfigPath := flag.String("kubeconfig", "", "where to write the admin kubeconfig once ready (required)")
	adminToken := flag.String("admin-token", "", "bearer token of the admin user (default: random, see the kubeconfig)")
	controllers := flag.String("controllers", defaultControllers, "kube-controller-manager --controllers")
	verbosity := flag.Int("v", 0, "klog verbosity of the Kubernetes components")
	startTimeout := flag.Duration("start-timeout", 3*time.Minute, "give up when the control plane is not ready by then")
	flag.Parse()
	if *dataDir == "" || *kubeconfigPath == "" {
		fmt.Fprintln(os.Stderr, "cluster: -data-dir and -kubeconfig are required")
		os.Exit(2)
	}
	if err := run(*dataDir, *kubeconfigPath, *adminToken, *controllers, *verbosity, *startTimeout); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
		os.Exit(1)
	}
}

func run(dataDir, kubeconfigPath, adminToken, controllers string, verbosity int, startTimeout time.Duration) error {
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	if err := klogFlags.Set("v", fmt.Sprint(verbosity)); err != nil {
		return err
	}

	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	if adminToken == "" {
		adminToken = randomHex(24)
	}

	// SIGTERM/SIGINT cancel ctx; everything below stops from it and main returns.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, orphaned := context.WithCancel(ctx)
	defer orphaned()
	go stopWhenOrphaned(ctx, orphaned)

	etcd, etcdURL, err := startEtcd(filepath.Join(dataDir, "etcd"))
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()

	files, err := writeAuthFiles(dataDir, adminToken)
	if err != nil {
		return err
	}

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	apiURL := fmt.Sprintf("https://%s", listener.Addr().String())
	// The admin kubeconfig the controller-manager uses; the public copy is written last.
	internalKubeconfig := filepath.Join(dataDir, "admin.kubeconfig")
	if err := writeKubeconfig(internalKubeconfig, apiURL, adminToken, files.caPEM); err != nil {
		return err
	}

	apiCtx, cancelAPI := context.WithCancel(context.Background())
	apiDone := make(chan error, 1)
	if err := startAPIServer(apiCtx, listener, etcdURL, files, apiDone); err != nil {
		cancelAPI()
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	// The apiserver must outlive the controller-manager so the controllers can shut down.
	defer func() {
		cancelAPI()
		select {
		case <-apiDone:
		case <-time.After(30 * time.Second):
			klog.Warning("kube-apiserver did not stop within 30s")
		}
	}()

	startCtx, cancelStart := context.WithTimeout(ctx, startTimeout)
	defer cancelStart()
	if err := waitReady(startCtx, apiURL, adminToken, files.caPEM, apiDone); err != nil {
		return fmt.Errorf("kube-apiserver never became ready at %s: %w", apiURL, err)
	}

	kcmCtx, cancelKCM := context.WithCancel(context.Background())
	kcmDone := make(chan error, 1)
	if err := startControllerManager(kcmCtx, internalKubeconfig, controllers, kcmDone); err != nil {
		cancelKCM()
		return fmt.Errorf("kube-controller-manager: %w", err)
	}
	defer func() {
		cancelKCM()
		select {
		case <-kcmDone:
		case <-time.After(30 * time.Second):
			klog.Warning("kube-controller-manager did not stop within 30s")
		}
	}()
	if err := waitControllers(startCtx, internalKubeconfig, kcmDone); err != nil {
		return fmt.Errorf("kube-controller-manager never became ready: %w", err)
	}

	tmp := kubeconfigPath + ".tmp"
	if err := writeKubeconfig(tmp, apiURL, adminToken, files.caPEM); err != nil {
		return err
	}
	if err := os.Rename(tmp, kubeconfigPath); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "cluster: ready at %s, kubeconfig %s\n", apiURL, kubeconfigPath)

	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "cluster: stopping")
		return nil
	case err := <-apiDone:
		return fmt.Errorf("kube-apiserver stopped: %v", err)
	case err := <-kcmDone:
		return fmt.Errorf("kube-controller-manager stopped: %v", err)
	case err := <-etcd.Err():
		return fmt.Errorf("etcd stopped: %v", err)
	}
}

// stopWhenOrphaned stops the control plane when its parent (the test runner) dies without
// sending SIGTERM, e.g. on SIGKILL: a leftover apiserver would hold ports and memory.
func stopWhenOrphaned(ctx context.Context, stop context.CancelFunc) {
	parent := os.Getppid()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
			if os.Getppid() != parent {
				fmt.Fprintln(os.Stderr, "cluster: parent process gone")
				stop()
				return
			}
		}
	}
}

func startEtcd(dir string) (*embed.Etcd, string, error) {
	clientPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	clientURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort))
	peerURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peerPort))

	cfg := embed.NewConfig()
	cfg.Name = "e2e"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{*clientURL}
	cfg.AdvertiseClientUrls = []url.URL{*clientURL}
	cfg.ListenPeerUrls = []url.URL{*peerURL}
	cfg.AdvertisePeerUrls = []url.URL{*peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	// Throwaway test data: durability across power loss buys nothing and fsync costs seconds
	// per test on a shared disk.
	cfg.UnsafeNoFsync = true

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", errors.New("not ready after 60s")
	}
	return e, clientURL.String(), nil
}

type authFiles struct {
	tokens, saKey, servingCert, servingKey string
	// caPEM signs the serving certificate; the kubeconfig trusts it, so clients verify TLS.
	caPEM []byte
}

// writeAuthFiles writes the static token file (the admin, in system:masters), a fresh RSA key
// that signs and verifies ServiceAccount tokens (TokenRequest, `kubectl create token`), and a
// serving certificate for 127.0.0.1/localhost signed by a CA made for this run.
func writeAuthFiles(dataDir, adminToken string) (authFiles, error) {
	f := authFiles{
		tokens:      filepath.Join(dataDir, "tokens.csv"),
		saKey:       filepath.Join(dataDir, "sa.key"),
		servingCert: filepath.Join(dataDir, "serving.crt"),
		servingKey:  filepath.Join(dataDir, "serving.key"),
	}
	line := fmt.Sprintf("%s,admin,admin-uid,\"system:masters\"\n", adminToken)
	if err := os.WriteFile(f.tokens, []byte(line), 0o600); err != nil {
		return f, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return f, err
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(f.saKey, pemKey, 0o600); err != nil {
		return f, err
	}
	// The bundle holds the serving certificate followed by the CA that signed it.
	bundle, servingKey, err := certutil.GenerateSelfSignedCertKey("localhost", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	if err != nil {
		return f, err
	}
	certs, err := certutil.ParseCertsPEM(bundle)
	if err != nil || len(certs) != 2 {
		return f, fmt.Errorf("unexpected self-signed bundle (%d certificates): %v", len(certs), err)
	}
	f.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[1].Raw})
	if err := os.WriteFile(f.servingCert, bundle, 0o600); err != nil {
		return f, err
	}
	return f, os.WriteFile(f.servingKey, servingKey, 0o600)
}

func startAPIServer(ctx context.Context, listener net.Listener, etcdURL string, files authFiles, done chan<- error) error {
	s := apiserveroptions.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--tls-cert-file=" + files.servingCert,
		"--tls-private-key-file=" + files.servingKey,
		"--token-auth-file=" + files.tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + files.saKey,
		"--service-account-signing-key-file=" + files.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		// Endpoints for the "kubernetes" Service would point at 127.0.0.1, which validation
		// forbids; nothing in the tests routes through that Service.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	s.SecureServing.Listener = listener
	s.SecureServing.BindPort = listener.Addr().(*net.TCPAddr).Port
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	// Loopback clients of the apiserver warn about their own deprecated calls; noise here.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	completed, err := s.Complete(ctx)
	if err != nil {
		return err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return utilerrors.NewAggregate(errs)
	}
	go func() { done <- apiserverapp.Run(ctx, completed) }()
	return nil
}

func startControllerManager(ctx context.Context, kubeconfig, controllers string, done chan<- error) error {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return err
	}
	all, disabled, aliases := kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases()
	named := s.Flags(all, disabled, aliases)
	s.ParsedFlags = &named
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, f := range named.FlagSets {
		fs.AddFlagSet(f)
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + controllers,
		"--leader-elect=false",
		// No serving endpoint: nothing scrapes it, and it would need its own authn delegation.
		"--secure-port=0",
		"--profiling=false",
		// Fewer GC workers than the default 20: the tests create few objects, the machine has 2 cores.
		"--concurrent-gc-syncs=5",
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	cfg, err := s.Config(ctx, all, disabled, aliases)
	if err != nil {
		return err
	}
	go func() { done <- kcmapp.Run(ctx, cfg.Complete()) }()
	return nil
}

// waitReady polls /readyz until the apiserver reports every check as passing.
func waitReady(ctx context.Context, apiURL, token string, caPEM []byte, apiDone <-chan error) error {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return errors.New("cannot load the generated CA")
	}
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
	}
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/readyz", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case err := <-apiDone:
			return fmt.Errorf("stopped: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("%w (last answer: %s)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitControllers waits for the serviceaccount controller to create the "default"
// ServiceAccount: proof that the controller-manager's informers synced and controllers run.
func waitControllers(ctx context.Context, kubeconfig string, kcmDone <-chan error) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		select {
		case err := <-kcmDone:
			return fmt.Errorf("stopped: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func writeKubeconfig(path, apiURL, token string, caPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: apiURL, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "e2e"
	return clientcmd.WriteToFile(*cfg, path)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
