# bash completion for chromogenic, generated from its command definitions (src/cli/cli-reference.ts)
_chromogenic() {
  local cur=${COMP_WORDS[COMP_CWORD]} path="" subs="" opts=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W 'info convert export formats demo inspect guest clean bootable image migrate resume jobs clouds bundle unbundle serve worker token' -- "$cur"))
    return
  fi
  path=${COMP_WORDS[1]}
  case "$path" in
    guest) subs='cleanup' ;;
    image) subs='list upload delete create' ;;
    jobs) subs='rm prune follow cancel' ;;
    token) subs='create' ;;
  esac
  if [ -n "$subs" ]; then
    if [ "$COMP_CWORD" -eq 2 ]; then
      COMPREPLY=($(compgen -W "$subs" -- "$cur"))
      return
    fi
    path="$path ${COMP_WORDS[2]}"
  fi
  case "$path" in
    'info') opts='-f --format --json --output --input-option --allow-reference -U --force-share' ;;
    'convert') opts='-O --output-format -f --format -o --option --input-option -c --compress --json -q --quiet --no-sync -n --in-place -U --force-share --allow-reference --disk -p --progress -t --cache -T --source-cache -S --sparse-size -W --out-of-order -m --coroutines --server --token-file' ;;
    'export') opts='--no-reboot --format --target --cloud --image --instance --clean --operations --work-dir --no-part-cache --keep --keep-snapshot --cloud-private-key --bundle-signer-cert --skip-bundle-signature-check --aws-concurrency --aws-read-via --aws-write-via --aws-bucket --aws-vm-import-role --server --token-file --bootable --xen-to-kvm --kernel --ramdisk --name --description --cpus --memory --nic --controller --os-type --ovf-version --manifest --hw-version -f --input-format --json -q --quiet --allow-reference -U --force-share' ;;
    'formats') opts='--json' ;;
    'demo') opts='--dir --no-clean --json -q --quiet' ;;
    'inspect') opts='-f --format --json --allow-reference' ;;
    'guest cleanup') opts='--force' ;;
    'clean') opts='-a --add --format --operations --enable --profile --keep-user-accounts --remove-user-accounts --keep-user -n --dry-run --report --in-place -O --output-format --work-dir --json -q --quiet --list-operations' ;;
    'bootable') opts='-O --output-format -f --format --size --table -n --dry-run --report --work-dir --xen-to-kvm --kernel --ramdisk --initramfs-guest-tool --json -q --quiet' ;;
    'image list') opts='--cloud --os-cloud --os-cacert --os-cert --os-key --insecure --api-timeout --bucket --bucket-acl --aws-concurrency --aws-read-via --aws-write-via --aws-bucket --aws-vm-import-role -f --format -c --column --json' ;;
    'image upload') opts='--cloud --os-cloud --os-cacert --os-cert --os-key --insecure --api-timeout --bucket --bucket-acl --aws-concurrency --aws-read-via --aws-write-via --aws-bucket --aws-vm-import-role -f --format --public --property --json' ;;
    'image delete') opts='--cloud --os-cloud --os-cacert --os-cert --os-key --insecure --api-timeout --bucket --bucket-acl --aws-concurrency --aws-read-via --aws-write-via --aws-bucket --aws-vm-import-role' ;;
    'image create') opts='--cloud --os-cloud --os-cacert --os-cert --os-key --insecure --api-timeout --bucket --bucket-acl --aws-concurrency --aws-read-via --aws-write-via --aws-bucket --aws-vm-import-role --no-reboot --node-ssh-key --node-known-hosts --node-host-key --node-user --node-port --node-instances-dir --cloud-private-key --bundle-signer-cert --skip-bundle-signature-check --format --public --property --share --clean --operations --work-dir --download-first --no-part-cache --keep --keep-snapshot --json -q --quiet --server --token-file' ;;
    'migrate') opts='--from --to --os-cloud --os-cacert --os-cert --os-key --insecure --api-timeout --bucket --bucket-acl --aws-concurrency --aws-read-via --aws-write-via --aws-bucket --aws-vm-import-role --image --instance --format --name --public --property --share --server-side --cloud-private-key --bundle-signer-cert --skip-bundle-signature-check --no-reboot --clean --operations --work-dir --download-first --no-part-cache --keep --keep-snapshot --json -q --quiet --server --token-file --bootable --no-bootable --xen-to-kvm --kernel --ramdisk' ;;
    'resume') opts='--json -q --quiet' ;;
    'jobs') opts='-f --format -c --column --json' ;;
    'jobs rm') opts='--force --json' ;;
    'jobs prune') opts='--failed --json' ;;
    'jobs follow') opts='--json -q --quiet --server --token-file' ;;
    'jobs cancel') opts='--json --server --token-file' ;;
    'clouds') opts='-f --format -c --column --json' ;;
    'bundle') opts='-i --image -r --arch -k --privatekey -c --cert --ec2cert -u --user -d --destination -p --prefix --kernel --ramdisk -B --block-device-mappings --image-type --productcodes --format --input-format --enc-key --enc-iv --part-size --bucket --cloud --bucket-acl --json -q --quiet' ;;
    'unbundle') opts='-m --manifest -s --source -d --destination -k --privatekey -c --cert -O --output-format --bucket --cloud --json -q --quiet' ;;
    'serve') opts='--listen --config --store --redis --queue --slots --cloud --work-dir --allow-read --allow-write' ;;
    'worker') opts='--config --store --redis --queue --slots --cloud --work-dir --allow-read --allow-write' ;;
    'token create') opts='--tokens --cloud --kind --admin' ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _chromogenic chromogenic
