import { StyleSheet, Text, View } from 'react-native';

import { Button } from './Button';
import { useTheme } from './theme';

/** Upload progress with a cancel button; after the bytes are sent, the server is still working. */
export function UploadProgress({ progress, onCancel }: { progress: number; onCancel: () => void }) {
  const theme = useTheme();
  const percent = Math.round(progress * 100);
  const label = progress < 1 ? `Uploading photo, ${percent} percent` : 'Photo sent, searching';
  return (
    <View style={[styles.box, { backgroundColor: theme.card, borderColor: theme.border }]}>
      <Text accessibilityLiveRegion="polite" style={{ color: theme.text, fontSize: 16 }}>
        {progress < 1 ? `Uploading… ${percent}%` : 'Searching the gallery…'}
      </Text>
      <View
        accessible
        accessibilityRole="progressbar"
        accessibilityLabel={label}
        accessibilityValue={{ min: 0, max: 100, now: percent }}
        style={[styles.track, { backgroundColor: theme.barTrack }]}
      >
        <View style={[styles.fill, { width: `${percent}%`, backgroundColor: theme.primary }]} />
      </View>
      <Button title="Cancel" kind="secondary" label="Cancel the upload" onPress={onCancel} />
    </View>
  );
}

const styles = StyleSheet.create({
  box: { borderWidth: 1, borderRadius: 12, padding: 14, gap: 12 },
  track: { height: 10, borderRadius: 5, overflow: 'hidden' },
  fill: { height: 10 },
});
