#!/usr/bin/env python3
"""Hostile load from outside, against a release `mttrly-central` (issue 10 §5).

Usage: python3 scripts/hostile-load.py mem|halfopen [path/to/mttrly-central]
  mem       2,000 MCP sessions with the caps lifted (memory per session), then 3,000
            `initialize` with one token under the default caps (how many are refused).
  halfopen  1,500 HTTP and 500 gRPC connections that send a partial request and stall:
            how long until central closes them, and whether /healthz stays fast.
Loopback only, bounded in count and time; each run uses its own temp data dir.
"""
import json, os, socket, subprocess, sys, tempfile, time
BIN = sys.argv[2] if len(sys.argv) > 2 else 'target/release/mttrly-central'
WORK = tempfile.mkdtemp(prefix='mttrly-hostile-')
def rss(pid):
    for l in open(f'/proc/{pid}/status'):
        if l.startswith('VmRSS'): return int(l.split()[1])*1024
def start(tag, env):
    d=os.path.join(WORK, tag)
    subprocess.run(['rm','-rf',d])
    out=subprocess.run([BIN,'--output','json','init','--data-dir',d],capture_output=True,text=True)
    tok=json.loads(out.stdout)['admin_token']
    e=dict(os.environ); e.update(env); e['MTTRLY_LOG']='error'
    p=subprocess.Popen([BIN,'--output','json','serve','--data-dir',d,'--grpc-listen','127.0.0.1:0','--http-listen','127.0.0.1:0'],stdout=subprocess.PIPE,stderr=subprocess.DEVNULL,env=e,text=True)
    ready=json.loads(p.stdout.readline())
    return p,tok,ready
def req(port, tok, body, session=None, method='POST'):
    s=socket.create_connection(('127.0.0.1',port)); s.settimeout(10)
    h=f'{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {tok}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Protocol-Version: 2025-06-18\r\n'
    if session: h+=f'Mcp-Session-Id: {session}\r\n'
    h+=f'Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}'
    s.sendall(h.encode()); data=b''
    while True:
        c=s.recv(65536)
        if not c: break
        data+=c
    s.close()
    head=data.split(b'\r\n\r\n')[0].decode(errors='replace')
    status=int(head.split()[1]); sid=None
    for l in head.split('\r\n'):
        if l.lower().startswith('mcp-session-id:'): sid=l.split(':',1)[1].strip()
    return status,sid
INIT=json.dumps({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"load","version":"1"}}})
DONE=json.dumps({"jsonrpc":"2.0","method":"notifications/initialized"})
def sessions(port,tok,n):
    ok=0; codes={}
    for i in range(n):
        st,sid=req(port,tok,INIT)
        codes[st]=codes.get(st,0)+1
        if sid: req(port,tok,DONE,sid); ok+=1
    return ok,codes
mode=sys.argv[1]
if mode=='mem':
    p,tok,r=start('mem',{'MTTRLY_MCP_SESSIONS_PER_TOKEN':'10000','MTTRLY_MCP_SESSIONS_PER_USER':'10000'})
    port=int(r['http_url'].rsplit(':',1)[1]); time.sleep(1)
    sessions(port,tok,20); time.sleep(1)
    base=rss(p.pid); t=time.time(); ok,codes=sessions(port,tok,2000); dt=time.time()-t; time.sleep(1)
    after=rss(p.pid)
    print(f'uncapped: {ok} sessions in {dt:.1f}s, RSS {base/1e6:.1f} -> {after/1e6:.1f} MB, {(after-base)/ok/1024:.1f} KB/session')
    p.terminate(); p.wait()
    p,tok,r=start('cap',{})
    port=int(r['http_url'].rsplit(':',1)[1]); time.sleep(1)
    base=rss(p.pid); t=time.time(); ok,codes=sessions(port,tok,3000); dt=time.time()-t; time.sleep(1)
    print(f'default caps: 3000 initialize in {dt:.1f}s -> {ok} sessions, statuses {codes}, RSS {base/1e6:.1f} -> {rss(p.pid)/1e6:.1f} MB')
    p.terminate(); p.wait()
if mode=='halfopen':
    p,tok,r=start('ho',{})
    hport=int(r['http_url'].rsplit(':',1)[1]); gport=int(r['grpc_url'].rsplit(':',1)[1]); time.sleep(1)
    fds=lambda: len(os.listdir(f'/proc/{p.pid}/fd'))
    f0=fds(); socks=[]
    t=time.time()
    for i in range(1500):
        s=socket.create_connection(('127.0.0.1',hport)); s.sendall(b'POST /mcp HTTP/1.1\r\nHost: x\r\n'); socks.append(s)
    for i in range(500):
        s=socket.create_connection(('127.0.0.1',gport)); s.sendall(b'PRI * HTTP/2.0\r\n'); socks.append(s)
    time.sleep(0.5); f1=fds()
    closed=[None]*len(socks)
    for s in socks: s.settimeout(0.05)
    while time.time()-t<20 and None in closed:
        for i,s in enumerate(socks):
            if closed[i] is None:
                try:
                    if s.recv(10)==b'': closed[i]=time.time()-t
                except socket.timeout: pass
                except OSError: closed[i]=time.time()-t
        time.sleep(0.2)
    done=[c for c in closed if c is not None]
    print(f'half-open: fds {f0} -> {f1} with 2000 held; {len(done)}/2000 closed by the server, the last after {max(done):.1f}s; fds now {fds()}')
    # healthz responsive
    s=socket.create_connection(('127.0.0.1',hport)); t=time.time(); s.sendall(b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'); d=s.recv(100); print('healthz', d[:15], f'{(time.time()-t)*1000:.1f} ms')
    p.terminate(); p.wait()
